"""Exact integer reference backend: the ground truth every other backend must match bit for bit."""

from __future__ import annotations

import numpy as np

from ..accelerator import Accelerator
from ..gemm_call import GemmCall, GemmResult
from ..operating_point import OperatingPoint
from ..stats import GemmStats, tile_stats_at, tile_stats_sparse, zero_tile_stats
from ..tiling import TilePlan, int32_gemm, pad_to_tiles

# Past one wrong element in this many, the statistics sum whole tiles rather than list the wrong elements.
DENSE_FRACTION = 8


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
        return GemmResult(owned_exact(call), exact_stats(call.plan, self.policy), wrong=0)

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


def owned_exact(call: GemmCall) -> np.ndarray:
    """The exact result as a new array the caller may change: a copy of the call's if it holds one already.

    Otherwise a GEMM of its own, written straight into the result instead of computed into the call
    and copied: when nothing else needs the exact result (as under a measuring ProtectedGemm,
    told by GemmResult.wrong that nothing differs) that saves a pass over the result.
    """
    return call.exact.copy() if "exact" in vars(call) else int32_gemm(call.x, call.w)


def stats_against_exact(y: np.ndarray, exact: np.ndarray, plan: TilePlan, policy,
                        pes: np.ndarray | None = None) -> GemmStats:
    """Statistics the hardware would report for result y: per-tile deviations from the exact result.

    By the checksum identity the hardware's d_c and e_r are the column and row sums of each tile's
    error matrix modulo 2^32, so only the elements that differ from the exact result are needed;
    every other tile has the statistics of an error-free one. pes, (count, 2) rows and columns of the
    array, says that only the elements those PEs compute can differ (the others are known exact).
    """
    return result_against_exact(y, exact, plan, policy, pes).stats


def result_against_exact(y: np.ndarray, exact: np.ndarray, plan: TilePlan, policy,
                         pes: np.ndarray | None = None) -> GemmResult:
    """y with the statistics of stats_against_exact and the count of its elements that differ from exact."""
    if pes is None:
        differ = y != exact
        wrong = np.count_nonzero(differ)
        if wrong == 0:
            return GemmResult(y, exact_stats(plan, policy), wrong=0)
        if wrong > y.size // DENSE_FRACTION:
            return GemmResult(y, _dense_stats(y, exact, plan, policy), wrong=wrong)
        # flat indices: numpy's 2-D nonzero is several times slower
        rows, cols = np.divmod(np.flatnonzero(differ), y.shape[1])
    else:
        rows, cols = _differing_at(y, exact, plan.array_n, pes)
        if len(rows) > y.size // DENSE_FRACTION:
            return GemmResult(y, _dense_stats(y, exact, plan, policy), wrong=len(rows))
    err = y[rows, cols].astype(np.int64) - exact[rows, cols]
    return GemmResult(y, _stats_of_errors(rows, cols, err, plan, policy), wrong=len(err))


def _differing_at(y: np.ndarray, exact: np.ndarray, n: int, pes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the elements of y that differ from exact among those the PEs `pes` compute."""
    rows, cols = [], []
    for r, c in pes:
        differ = y[r::n, c::n] != exact[r::n, c::n]
        i, j = np.divmod(np.flatnonzero(differ), differ.shape[1])
        rows.append(r + n * i)
        cols.append(c + n * j)
    return np.concatenate(rows), np.concatenate(cols)


def _dense_stats(y: np.ndarray, exact: np.ndarray, plan: TilePlan, policy) -> GemmStats:
    """stats_against_exact for a result wrong almost everywhere: sums over whole tiles of the error matrix."""
    n = plan.array_n
    tiles = pad_to_tiles(y.astype(np.int64) - exact, n).reshape(plan.tiles_m, n, plan.tiles_n, n)
    d = tiles.sum(axis=1).reshape(-1, n).astype(np.uint32).view(np.int32)
    e = tiles.sum(axis=3).transpose(0, 2, 1).reshape(-1, n).astype(np.uint32).view(np.int32)
    return GemmStats(tile_stats_sparse(d, e, policy), (plan.tiles_m, plan.tiles_n), d, e)


def _stats_of_errors(rows: np.ndarray, cols: np.ndarray, err: np.ndarray, plan: TilePlan, policy) -> GemmStats:
    """GemmStats of a result that differs from the exact one by err at (rows, cols)."""
    n, count = plan.array_n, plan.count
    tiles = (rows // n) * plan.tiles_n + cols // n
    hit = np.bincount(tiles, minlength=count) > 0
    bad = np.flatnonzero(hit)
    # sums only over the tiles holding an error, numbered by their rank among them
    d_bad, e_bad = _tile_sums((np.cumsum(hit) - 1)[tiles], rows, cols, err, n, len(bad))
    d, e = np.zeros((count, n), np.int32), np.zeros((count, n), np.int32)
    d[bad], e[bad] = d_bad, e_bad
    return GemmStats(tile_stats_at(count, bad, d_bad, e_bad, policy), (plan.tiles_m, plan.tiles_n), d, e)


def _tile_sums(slot, rows, cols, err, n: int, slots: int) -> tuple[np.ndarray, np.ndarray]:
    """Column and row sums d, e (slots, n) int32 modulo 2^32 of the errors err in tile slots `slot`."""
    # each sum adds at most n errors below 2^32 in magnitude: exact in float64 weights
    d = np.bincount(slot * n + cols % n, err, slots * n)
    e = np.bincount(slot * n + rows % n, err, slots * n)
    return (s.astype(np.int64).astype(np.uint32).view(np.int32).reshape(slots, n) for s in (d, e))


def exact_stats(plan: TilePlan, policy) -> GemmStats:
    """What the statistics unit reports for a GEMM without errors: every deviation zero."""
    zeros = np.zeros((plan.count, plan.array_n), dtype=np.int32)
    return GemmStats(zero_tile_stats(plan.count, plan.array_n, policy), (plan.tiles_m, plan.tiles_n), zeros, zeros)
