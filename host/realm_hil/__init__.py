"""realm-hil: timing errors in LLM inference and statistical ABFT, on a PYNQ board or in Verilator."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .backends.base import Accelerator
from .stats import GemmStats, PolicyConfig, TileStats

try:
    __version__ = version("realm-hil")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

BACKENDS = ("board", "sim", "twin", "reference")


def open_accelerator(kind: str = "sim", **options) -> Accelerator:
    """Open a backend by name: "board", "sim", "twin" or "reference"."""
    from .backends.registry import open_backend

    return open_backend(kind, **options)


__all__ = ["Accelerator", "BACKENDS", "GemmStats", "PolicyConfig", "TileStats", "open_accelerator", "__version__"]
