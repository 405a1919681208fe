"""Exact integer reference backend: the ground truth every other backend must match bit for bit."""

from __future__ import annotations

import numpy as np

from ..accelerator import Accelerator
from ..gemm_call import GemmCall, GemmResult
from ..operating_point import OperatingPoint
from ..stats import GemmStats, tile_stats_sparse, zero_tile_stats
from ..tiling import TilePlan, pad_to_tiles


class ReferenceAccelerator(Accelerator):
    """torch._int_mm (or numpy int64) GEMM with statistics from the shared statistics model.

    An ideal device never errs: its operating point is recorded (so modeled time and cost see the
    clock it stands in for) but changes nothing.
    """

    name = "reference"

    def __init__(self, array_n: int = 8, nominal_mhz: float = 100.0, voltage_v: float | None = None) -> None:
        super().__init__(array_n)
        self._nominal = OperatingPoint(nominal_mhz)
        self._point = OperatingPoint(nominal_mhz, voltage_v)

    def _run(self, call: GemmCall) -> GemmResult:
        return GemmResult(call.exact.copy(), exact_stats(call.plan, self.policy))

    @property
    def operating_point(self) -> OperatingPoint:
        return self._point

    @property
    def nominal(self) -> OperatingPoint:
        return self._nominal

    def set_operating_point(self, point: OperatingPoint, *, force: bool = False) -> OperatingPoint:
        self._check_open()
        self._point = point
        return point


def stats_against_exact(y: np.ndarray, exact: np.ndarray, plan: TilePlan, policy) -> GemmStats:
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


def exact_stats(plan: TilePlan, policy) -> GemmStats:
    """What the statistics unit reports for a GEMM without errors: every deviation zero."""
    zeros = np.zeros((plan.count, plan.array_n), dtype=np.int32)
    return GemmStats(zero_tile_stats(plan.count, plan.array_n, policy), (plan.tiles_m, plan.tiles_n), zeros, zeros)
