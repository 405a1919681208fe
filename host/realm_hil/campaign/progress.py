"""The campaign's progress bar on stderr: points done, failed and remaining."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from tqdm import tqdm

from .runner import Progress


@contextlib.contextmanager
def progress_bar(label: str) -> Iterator:
    """A progress callback for run_campaign; the bar appears with the first finished point, so an error
    before any work stays one line."""
    bar = None

    def update(p: Progress) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=p.total, desc=label, file=sys.stderr, unit="point", dynamic_ncols=True)
        bar.n = p.done + p.failed
        bar.set_postfix_str(f"failed {p.failed}, remaining {p.total - p.done - p.failed}", refresh=False)
        bar.refresh()

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()
