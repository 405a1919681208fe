"""Build products kept in the user cache under a hash of their inputs, so each is built once.

The twin kernel, the Verilated accelerator and the cocotb testbenches are built this way. A product
lives in a directory named by the hash of everything that changes it. A file lock in that directory
lets one process (or pytest-xdist worker) build while the others wait, and the product is renamed
into place only when complete: nobody loads half of one, and a failed build leaves nothing to reuse.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Built:
    path: Path
    built: bool  # False when an earlier build was reused
    seconds: float  # building it, or waiting for the lock and finding it


def content_key(files: Iterable[Path], *settings: object) -> str:
    """sha256 (hex) of each file's name and bytes, in the order given, then of repr(settings)."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(Path(path).name.encode())
        digest.update(Path(path).read_bytes())
    digest.update(repr(settings).encode())
    return digest.hexdigest()


def build_once(directory: Path, product: str, build: Callable[[Path], None], *, rebuild: bool = False) -> Built:
    """directory/product, made by `build(partial)` unless it exists already (or `rebuild`).

    `build` writes the whole product to the path it is given, or raises; the product is renamed into
    place only after `build` returns.
    """
    start = time.perf_counter()
    target = directory / product
    partial = directory / f"{product}.partial"
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists() and not rebuild:
            return Built(target, False, time.perf_counter() - start)
        target.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
        try:
            build(partial)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, target)
    return Built(target, True, time.perf_counter() - start)
