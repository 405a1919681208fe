"""Exact integer reference backend: the ground truth every other backend must match bit for bit."""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import InputError
from ..stats import GemmStats, tile_stats_sparse, zero_tile_stats
from ..tiling import int32_gemm, pad_to_tiles, plan_for
from .base import Accelerator


class ReferenceAccelerator(Accelerator):
    """torch._int_mm (or numpy int64) GEMM with statistics from the shared statistics model."""

    name = "reference"

    def __init__(self, array_n: int = 8, nominal_mhz: float = 100.0) -> None:
        super().__init__(array_n)
        self._clock = nominal_mhz

    def _gemm(self, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, GemmStats]:
        y = int32_gemm(x, w)
        return y, exact_stats(y, plan_for(x, w, self.array_n), self.policy)

    def set_clock(self, mhz: float, *, force: bool = False) -> float:
        # An ideal device never errs, so the clock is recorded but changes nothing.
        self._check_open()
        if isinstance(mhz, bool) or not isinstance(mhz, numbers.Real) or not math.isfinite(mhz) or mhz <= 0:
            raise InputError(f"clock must be a positive frequency in MHz, got {mhz!r}")
        self._clock = float(mhz)
        return self._clock

    @property
    def clock_mhz(self) -> float:
        return self._clock


def stats_against_exact(y: np.ndarray, exact: np.ndarray, plan, policy) -> GemmStats:
    """Statistics the hardware would report for result y: per-tile deviations from the exact result.

    By the checksum identity the hardware's d_c and e_r are the column and row sums of each tile's
    error matrix modulo 2^32, so only the error matrix is needed.
    """
    n = plan.array_n
    tiles = pad_to_tiles(y.astype(np.int64) - exact, n).reshape(plan.tiles_m, n, plan.tiles_n, n)
    d = tiles.sum(axis=1).reshape(-1, n)
    e = tiles.sum(axis=3).transpose(0, 2, 1).reshape(-1, n)
    d = d.astype(np.uint32).view(np.int32)
    e = e.astype(np.uint32).view(np.int32)
    return GemmStats(tile_stats_sparse(d, e, policy), (plan.tiles_m, plan.tiles_n), d, e)


def exact_stats(y: np.ndarray, plan, policy) -> GemmStats:
    zeros = np.zeros((plan.count, plan.array_n), dtype=np.int32)
    return GemmStats(zero_tile_stats(plan.count, plan.array_n, policy), (plan.tiles_m, plan.tiles_n), zeros, zeros)
