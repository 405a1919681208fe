"""Software twin of the overclocked array: INT8 GEMM under the timing-error model, compiled.

The kernel (csrc/twin.cpp) is bit-exact with the numpy oracle `timing.emulation.timed_dot`:
output (m, j) is accumulated by PE (m % n, j % n) with that PE's slack L. With the checksum
accumulators overclocked as well (EMU_CHECKS) it also computes each tile's deviations, bit-exact
with `timing.emulation.timed_checksums`. It is built on first use into the user cache
(build_cache), keyed by a hash of the source, the flags and the compiler (including what
-march=native resolves to, so a cache shared between different CPUs stays correct).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..build_cache import build_once, content_key
from ..toolchain import cache_dir
from .device_profile import load_profile
from .emulation import L_EXACT
from .slack import CHECK_GROUPS, slack_table

SOURCE = Path(__file__).resolve().parent / "csrc" / "twin.cpp"
BASE_FLAGS = ("-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-pthread")
# Forces the portable (auto-vectorised) kernel that machines without AVX-512 get, so it stays tested.
PORTABLE_DEFINE = "-DREALM_TWIN_PORTABLE"

# LLM-shaped GEMMs (tokens x hidden x hidden, x intermediate, intermediate x hidden of SmolLM2-135M).
LLM_SHAPES = ((64, 576, 576), (64, 576, 1536), (64, 1536, 576))


class TwinBuildError(RuntimeError):
    """The twin kernel could not be compiled."""


@dataclass(frozen=True)
class TwinKernel:
    path: Path
    lanes: int  # 16 with the AVX-512 kernel, 1 with the portable one
    lib: ctypes.CDLL = field(repr=False, compare=False)


def _compiler() -> str:
    cxx = os.environ.get("CXX", "g++")
    found = shutil.which(cxx)
    if found is None:
        raise TwinBuildError(f"twin kernel needs a C++ compiler: {cxx!r} not found (set CXX)")
    return found


def _compiler_identity(cxx: str) -> str:
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False).stdout
    native_cmd = [cxx, "-march=native", "-dM", "-E", "-x", "c++", os.devnull]
    native = subprocess.run(native_cmd, capture_output=True, text=True, check=False).stdout
    return version + "".join(sorted(native.splitlines()))


def _compile(cxx: str, flags: list[str], library: Path, log: Path) -> None:
    cmd = [cxx, *flags, str(SOURCE), "-o", str(library)]
    with log.open("w") as out:
        out.write(" ".join(cmd) + "\n")
        out.flush()
        ok = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False).returncode == 0
    if not ok:
        raise TwinBuildError(f"twin kernel build failed ({Path(cxx).name}); see {log}")


_KERNELS: dict[bool, TwinKernel] = {}


def load_kernel(portable: bool = False) -> TwinKernel:
    """The compiled kernel, built on first use (portable=True forces the non-AVX-512 code path)."""
    if portable in _KERNELS:
        return _KERNELS[portable]
    cxx = _compiler()
    flags = [*BASE_FLAGS, *([PORTABLE_DEFINE] if portable else [])]
    out = cache_dir("twin", f"twin-{content_key([SOURCE], flags, _compiler_identity(cxx))[:20]}")
    target = build_once(out, "twin.so", lambda library: _compile(cxx, flags, library, out / "build.log")).path
    lib = ctypes.CDLL(str(target))
    lib.realm_twin_gemm.restype = ctypes.c_int
    lib.realm_twin_gemm.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_int64,
        ctypes.c_int64,
        ctypes.c_int64,
        ctypes.c_int32,
        ctypes.c_int32,
        ctypes.c_int32,
        ctypes.c_void_p,
    ]
    lib.realm_twin_checksums.restype = ctypes.c_int
    lib.realm_twin_checksums.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_int64,
        ctypes.c_int64,
        ctypes.c_int64,
        ctypes.c_int32,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    lib.realm_twin_lanes.restype = ctypes.c_int
    kernel = TwinKernel(path=target, lanes=lib.realm_twin_lanes(), lib=lib)
    _KERNELS[portable] = kernel
    return kernel


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _int8_matrix(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2 or a.dtype != np.int8:
        raise ValueError(f"{name} must be a 2-D int8 array, got {a.dtype} with shape {a.shape}")
    return np.ascontiguousarray(a)


def _operands(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = _int8_matrix(x, "x")
    w = _int8_matrix(w, "w")
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"inner dimensions differ: x is {x.shape}, w is {w.shape}")
    return x, w


def _slack_table(slack: np.ndarray, shape: tuple[int, int], name: str) -> np.ndarray:
    table = np.asarray(slack)
    if table.shape != shape or not np.issubdtype(table.dtype, np.integer):
        raise ValueError(f"{name} must be an integer {shape} table, got {table.dtype} {table.shape}")
    return np.ascontiguousarray(np.clip(table, -1, L_EXACT).astype(np.int8))


def timed_gemm(
    x: np.ndarray,
    w: np.ndarray,
    slack: np.ndarray,
    array_n: int,
    *,
    exact: np.ndarray | None = None,
    threads: int | None = None,
    portable: bool = False,
) -> np.ndarray:
    """(M, N) int32 = x (M, K) int8 @ w (K, N) int8 on an array_n x array_n array with slack table L.

    exact, when given, is the exact product of x and w (int32, as `tiling.int32_gemm` returns it): the
    elements of PEs that cannot err (L >= 31) are taken from it and only the others are emulated, so
    near the onset of errors the call costs a small fraction of the full emulation. threads defaults to
    the CPUs this process may run on.
    """
    x, w = _operands(x, w)
    table = _slack_table(slack, (array_n, array_n), "slack")
    m, k = x.shape
    n = w.shape[1]
    if exact is None:
        y = np.empty((m, n), dtype=np.int32)
    else:
        exact = np.asarray(exact)
        if exact.shape != (m, n) or exact.dtype != np.int32:
            raise ValueError(f"exact must be the ({m}, {n}) int32 product of x and w, got {exact.dtype} {exact.shape}")
        y = np.array(exact, order="C")
    lib = load_kernel(portable).lib
    rc = lib.realm_twin_gemm(
        x.ctypes.data, w.ctypes.data, table.ctypes.data, m, k, n, array_n, threads or _cpus(), exact is not None,
        y.ctypes.data,
    )
    if rc != 0:
        raise ValueError(f"twin kernel rejected the problem (M={m}, K={k}, N={n}, array_n={array_n})")
    return y


def timed_checksums(
    x: np.ndarray, w: np.ndarray, y: np.ndarray, check_slack: np.ndarray, array_n: int, *, portable: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Deviations d, e of the GEMM x @ w with its checksum accumulators under the timing model.

    y (M, N) is what the array produced and check_slack the (CHECK_GROUPS, n) table in CK_L_TABLE
    order; d and e are (tiles, n) int32 in row-major tile order, as the hardware sends them.
    """
    x, w = _operands(x, w)
    table = _slack_table(check_slack, (CHECK_GROUPS, array_n), "check slack")
    m, k = x.shape
    n = w.shape[1]
    y = np.ascontiguousarray(y, dtype=np.int32)
    if y.shape != (m, n):
        raise ValueError(f"y must be the ({m}, {n}) result of the GEMM, got shape {y.shape}")
    tiles = -(-m // array_n) * -(-n // array_n)
    d = np.empty((tiles, array_n), dtype=np.int32)
    e = np.empty((tiles, array_n), dtype=np.int32)
    lib = load_kernel(portable).lib
    rc = lib.realm_twin_checksums(
        x.ctypes.data, w.ctypes.data, y.ctypes.data, table.ctypes.data, m, k, n, array_n, d.ctypes.data,
        e.ctypes.data,
    )
    if rc != 0:
        raise ValueError(f"twin kernel rejected the problem (M={m}, K={k}, N={n}, array_n={array_n})")
    return d, e


@dataclass(frozen=True)
class TwinBench:
    m: int
    k: int
    n: int
    seconds: float
    mac_per_s: float


@dataclass(frozen=True)
class TwinBenchReport:
    profile: str
    clock_mhz: float
    array_n: int
    slack_histogram: dict[int, int]  # L value -> number of PEs
    lanes: int
    threads: int
    results: list[TwinBench]


def bench_twin(
    shapes: tuple[tuple[int, int, int], ...] = LLM_SHAPES,
    *,
    profile: str = "pynq-z2",
    clock_mhz: float | None = None,
    array_n: int = 8,
    seed: int = 0,
    repeats: int = 5,
    threads: int | None = None,
) -> TwinBenchReport:
    """Best-of-`repeats` MAC/s of timed_gemm on each (M, K, N) with the timing model active.

    The default clock is a heavy overclock where the median PE of the default die (the slowest,
    at the nominal supply) has L = 15, so with variation the array spans roughly L = 5..25 and
    every PE takes the full timed path.
    """
    prof = load_profile(profile)
    if clock_mhz is None:
        clock_mhz = 1000.0 / ((prof.t_base_ns + 15 * prof.tau_ns_per_bit) * prof.voltage_factor())
    table = slack_table(prof, clock_mhz, array_n, seed)
    values, counts = np.unique(table, return_counts=True)
    kernel = load_kernel()
    rng = np.random.default_rng(seed)
    results = []
    for m, k, n in shapes:
        x = rng.integers(-128, 128, size=(m, k), dtype=np.int8)
        w = rng.integers(-128, 128, size=(k, n), dtype=np.int8)
        timed_gemm(x, w, table, array_n, threads=threads)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            timed_gemm(x, w, table, array_n, threads=threads)
            best = min(best, time.perf_counter() - start)
        results.append(TwinBench(m, k, n, best, m * k * n / best))
    return TwinBenchReport(
        profile=prof.name,
        clock_mhz=clock_mhz,
        array_n=array_n,
        slack_histogram={int(v): int(c) for v, c in zip(values, counts, strict=True)},
        lanes=kernel.lanes,
        threads=threads or _cpus(),
        results=results,
    )
