"""A single GEMM on a backend, checked bit for bit against numpy.

The expected result is computed here in numpy int64 and reduced modulo 2^32, deliberately not
with tiling.int32_gemm: the reference backend runs int32_gemm, so checking it against itself
could never fail.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from . import open_accelerator


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


def run_gemm_check(backend: str, m: int, k: int, n: int, seed: int = 0) -> GemmCheck:
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(m, k), dtype=np.int8)
    w = rng.integers(-128, 128, size=(k, n), dtype=np.int8)
    expected = numpy_int32_gemm(x, w)
    with open_accelerator(backend) as acc:
        start = time.perf_counter()
        y = acc.gemm(x, w)
        seconds = time.perf_counter() - start
        stats = acc.last_stats
    mismatches = int(np.count_nonzero(y != expected))
    return GemmCheck(backend, (m, k, n), seed, mismatches == 0, mismatches, seconds, stats.n_tiles, stats.tiles_err)


def numpy_int32_gemm(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ w in exact int64, wrapped to int32 as the array's 32-bit accumulators wrap."""
    return ((x.astype(np.int64) @ w.astype(np.int64)) % (1 << 32)).astype(np.uint32).view(np.int32)
