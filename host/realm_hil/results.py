"""Crash-safe result files: atomic replacement and a resumable record log keyed by point."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .errors import InputError


def atomic_write_text(path: Path, text: str) -> None:
    """Write text so that readers see either the old file or the complete new one, never a torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_output_dir(path: Path) -> Path:
    """`path` as an output directory that can be written, checked before any work so no result is lost.

    It must be a directory or not exist yet; then it is created on the first write, which needs the
    nearest existing ancestor to be a directory this process can write. A probe directory really
    created and removed there answers that, where permission bits do not (root, read-only mounts).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"output directory {path} is a file")
    existing = path
    while not existing.exists() and not existing.is_symlink():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"cannot create output directory {path}: {existing} is not a directory")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".realm-hil-probe-", dir=existing))
    except OSError as exc:
        raise InputError(f"cannot write output directory {path}: {exc.strerror or exc} in {existing}") from None
    return path


def check_output_file(path: Path) -> Path:
    """`path` as an output file that can be (re)written: not a directory, in a writable directory."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"output file {path} is a directory")
    check_output_dir(path.parent)
    return path


def atomic_write_json(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n")


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
