"""Build the Verilated realm_accel plus the sim_fallback harness into a shared library, once.

The sources are those rtl/realm_accel.f lists. A build is keyed by everything that changes the
binary (RTL, harness sources, parameters, waveform support, the EMU_CHECKS variant, Verilator
version) and kept in the user cache (build_cache), so a second open, or a second pytest-xdist
worker, only loads the library.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .. import filelist, regmap
from ..build_cache import build_once, content_key
from ..errors import RealmError
from ..repo_files import HARNESS, RTL
from ..toolchain import cache_dir, find_verilator

TOP = "realm_accel"
LIB_NAME = "librealm_sim.so"
JOBS = 2


class SimBuildError(RealmError):
    """Verilator could not build the simulation library."""


@dataclass(frozen=True)
class SimBuild:
    library: Path
    built: bool  # False when the cached library was reused
    seconds: float


def _inputs(rtl_dir: Path) -> list[Path]:
    harness = sorted(p for p in HARNESS.rglob("*") if p.suffix in (".cpp", ".h"))
    return filelist.sources(TOP, rtl=rtl_dir) + filelist.headers(rtl_dir) + harness


def _defines(array_n: int, trace: bool) -> list[str]:
    flags = [
        f"-DREALM_N={array_n}",
        f"-DREALM_CTRL_ADDR={regmap.CTRL:#x}",
        f"-DREALM_SOFT_RESET_BIT={regmap.CTRL_SOFT_RESET[1]}",
        f"-DREALM_STATUS_ADDR={regmap.STATUS:#x}",
        f"-DREALM_STATUS_BUSY_BIT={regmap.STATUS_BUSY[1]}",
    ]
    return flags + (["-DREALM_TRACE"] if trace else [])


def _check_lz4() -> None:
    """Verilator's FST writer includes <lz4.h>; `make setup` installs it (Debian: liblz4-dev)."""
    probe = subprocess.run(
        ["c++", "-E", "-x", "c++", "-"], input="#include <lz4.h>\n", capture_output=True, text=True
    )
    if probe.returncode != 0:
        raise SimBuildError("FST waveforms need the lz4 headers: apt-get install liblz4-dev (make setup does)")


def _command(rtl_dir: Path, out: Path, library: Path, array_n: int, trace: bool, emu_checks: bool) -> list[str]:
    verilator = find_verilator()
    if trace:
        _check_lz4()
    cflags = " ".join(["-fPIC", "-O3", f"-I{HARNESS}", *_defines(array_n, trace)])
    cmd = [
        str(verilator.binary),
        "--cc",
        "--exe",
        "--build",
        "-j",
        str(JOBS),
        "-O3",
        "--x-assign",
        "fast",
        "--x-initial",
        "fast",
        "--noassert",
        "-Wno-fatal",
        "-Wno-lint",
        "-Wno-style",
        "--top-module",
        TOP,
        f"-GN={array_n}",
        "-GTIMING_EMU=1",
        "-GINJECT=1",
        f"-GEMU_CHECKS={int(emu_checks)}",
        f"-I{rtl_dir}",
        "--Mdir",
        str(out / "obj"),
        "-CFLAGS",
        cflags,
        "-LDFLAGS",
        "-shared",
        "-o",
        str(library),
    ]
    if trace:
        cmd.append("--trace-fst")
    sources = filelist.sources(TOP, rtl=rtl_dir)
    return cmd + [str(p) for p in sources] + [str(HARNESS / "realm_sim.cpp")]


def build_key(array_n: int, trace: bool = False, rtl_dir: Path = RTL, emu_checks: bool = False) -> str:
    settings = (array_n, trace, emu_checks, _defines(array_n, trace), find_verilator().version)
    return content_key(_inputs(rtl_dir), *settings)[:16]


def build(array_n: int = 8, *, trace: bool = False, rtl_dir: Path = RTL, emu_checks: bool = False) -> SimBuild:
    """The simulation library for an N x N array, built on first use; raises SimBuildError.

    emu_checks=True builds the variant whose checksum accumulators emulate timing errors too.
    """
    rtl_dir = Path(rtl_dir)
    variant = f"n{array_n}{'-ck' if emu_checks else ''}{'-fst' if trace else ''}"
    out = cache_dir("sim", f"{TOP}-{variant}-{build_key(array_n, trace, rtl_dir, emu_checks)}")

    def verilate(library: Path) -> None:
        obj_dir = out / "obj"
        shutil.rmtree(obj_dir, ignore_errors=True)
        log = out / "build.log"
        with open(log, "w") as log_file:
            result = subprocess.run(
                _command(rtl_dir, out, library, array_n, trace, emu_checks),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=find_verilator().env(),
                cwd=out,
            )
        if result.returncode != 0 or not library.exists():
            raise SimBuildError(
                f"Verilator build of {TOP} (N={array_n}{', EMU_CHECKS=1' if emu_checks else ''}) failed; see {log}"
            )
        shutil.rmtree(obj_dir, ignore_errors=True)

    done = build_once(out, LIB_NAME, verilate)
    return SimBuild(done.path, done.built, done.seconds)
