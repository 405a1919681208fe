"""realm-hil: timing errors in LLM inference and statistical ABFT, on a PYNQ board or in Verilator."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .accelerator import Accelerator
from .backends.registry import BACKENDS, open_accelerator
from .gemm_call import GemmResult, GemmSite
from .operating_point import OperatingPoint
from .stats import GemmStats, PolicyConfig, TileStats

try:
    __version__ = version("realm-hil")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["Accelerator", "BACKENDS", "GemmResult", "GemmSite", "GemmStats", "OperatingPoint", "PolicyConfig",
           "TileStats", "open_accelerator", "__version__"]
