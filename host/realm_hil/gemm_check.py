"""A single GEMM on a backend, checked bit for bit against numpy.

The expected result is computed here in numpy int64 and reduced modulo 2^32, deliberately not
with tiling.int32_gemm: the reference backend runs int32_gemm, so checking it against itself
could never fail.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from .backends.registry import open_accelerator
from .errors import InputError
from .tiling import check_k


@dataclass
class GemmCheck:
    backend: str
    shape: tuple[int, int, int]
    seed: int
    exact: bool
    mismatches: int
    seconds: float
    tiles: int
    tiles_err: int

    @property
    def macs_per_s(self) -> float:
        m, k, n = self.shape
        return m * k * n / self.seconds if self.seconds else float("inf")

    def summary(self) -> str:
        m, k, n = self.shape
        verdict = "bit-exact vs numpy (int64 mod 2^32)" if self.exact else f"MISMATCH in {self.mismatches} elements"
        return (f"{self.backend}: {m}x{k}x{n} INT8 GEMM (seed {self.seed}) in {self.seconds:.3f} s "
                f"({self.macs_per_s / 1e6:.1f} MMAC/s), {self.tiles} tiles, {self.tiles_err} with errors: {verdict}")


def check_gemm_size(m: int, k: int, n: int) -> None:
    """Refuse a shape that cannot run, from its size alone, before anything is allocated."""
    if min(m, k, n) < 1:
        raise InputError(f"GEMM dimensions must be at least 1, got {m}x{k}x{n}")
    check_k(k)
    # int8 operands, then int32 results three times: the backend's, the expected, the backend's tiles
    need = m * k + k * n + 3 * 4 * m * n
    have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need > have:
        raise InputError(f"a {m}x{k}x{n} GEMM needs {need / 2**30:.3g} GiB for its operands and results; "
                         f"this machine has {have / 2**30:.3g} GiB")


def run_gemm_check(backend: str, m: int, k: int, n: int, seed: int = 0) -> GemmCheck:
    check_gemm_size(m, k, n)
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(m, k), dtype=np.int8)
    w = rng.integers(-128, 128, size=(k, n), dtype=np.int8)
    expected = numpy_int32_gemm(x, w)
    with open_accelerator(backend) as acc:
        start = time.perf_counter()
        result = acc.gemm(x, w)
        seconds = time.perf_counter() - start
    y, stats = result.y, result.stats
    mismatches = int(np.count_nonzero(y != expected))
    return GemmCheck(backend, (m, k, n), seed, mismatches == 0, mismatches, seconds, stats.n_tiles, stats.tiles_err)


def numpy_int32_gemm(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ w in exact int64, wrapped to int32 as the array's 32-bit accumulators wrap."""
    return ((x.astype(np.int64) @ w.astype(np.int64)) % (1 << 32)).astype(np.uint32).view(np.int32)
