"""Options and parameter types shared by several commands."""

from __future__ import annotations

import contextlib
import math
import sys
from pathlib import Path

import click

from ..backends.registry import BACKENDS, backends_with
from ..errors import InputError
from ..results import check_output_dir, check_output_file

backend_option = click.option(
    "--backend", default="sim", show_default=True, type=click.Choice(BACKENDS), help="where GEMMs run"
)

emulate_checks_option = click.option(
    "--emulate-checks",
    is_flag=True,
    help=f"{', '.join(backends_with('emulated_checks'))}: overclock the checksum accumulators with the array "
    "(EMU_CHECKS build) instead of keeping the checking logic exact",
)


class FiniteFloat(click.FloatRange):
    """A float in range that is also finite: nan passes every range comparison, inf an open bound."""

    def convert(self, value, param, ctx) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


# an array clock in MHz
MHZ = FiniteFloat(min=0, min_open=True)
# numpy's generators take only non-negative seeds
SEED = click.IntRange(0)


def _checked(check):
    def callback(_ctx, param, value):
        if value is None:
            return None
        try:
            return check(Path(value))
        except InputError as exc:
            raise click.BadParameter(str(exc), param=param) from None

    return callback


def out_dir_option(default: str | None, help: str):
    """--out DIR, checked writable before any work so a finished run is never lost to a bad path."""
    return click.option("--out", "out_dir", default=default, show_default=default is not None,
                        type=click.Path(path_type=Path), callback=_checked(check_output_dir), help=help)


def out_file_option(help: str):
    """--out FILE, checked writable before any work."""
    return click.option("--out", "out_path", default=None, type=click.Path(path_type=Path),
                        callback=_checked(check_output_file), help=help)


@contextlib.contextmanager
def progress_bar(label: str):
    """A (done, total) progress callback drawing a bar on stderr; the bar appears with the first
    report, so a failure before any work stays a single line."""
    with contextlib.ExitStack() as stack:
        bar = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                bar = stack.enter_context(click.progressbar(length=total, label=label, file=sys.stderr))
            bar.update(done - bar.pos)

        yield progress


@contextlib.contextmanager
def labelled_progress_bar():
    """A (done, total, label) progress callback drawing a bar on stderr that names the step under way; like
    progress_bar it appears with the first report, so a failure before any work stays a single line."""
    with contextlib.ExitStack() as stack:
        bar = None

        def progress(done: int, total: int, label: str) -> None:
            nonlocal bar
            if bar is None:
                bar = stack.enter_context(click.progressbar(length=total, file=sys.stderr, show_pos=True))
            bar.label = label
            bar.update(done - bar.pos)

        yield progress
