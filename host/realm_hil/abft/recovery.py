"""Recovery: a GEMM engine that runs on a possibly erring accelerator and hands back exact-enough results.

`ProtectedGemm` wraps a backend and is a GEMM engine for the GemmRouter (`gemm(x, w, site=)`
returning a GemmResult, `name`). Per GEMM it prepares the call once (validation, tile plan), programs
the statistics unit for the policy and the GEMM's site, runs the call on the backend, reads the
recover flags, repairs what the policy says (abft/policies.py) and recomputes the remaining flagged
tiles exactly, either on a recovery accelerator running at its nominal clock or on the host, then
accounts the modeled cost (abft/cost.py). The site comes with each GEMM, since per-layer,
per-component thresholds are what statistical ABFT and ApproxABFT are made of, and travels on in
the call to the backend.

`SoftwareFaultAccelerator` is the device the field's software fault models run on: an exact
GEMM whose INT32 result a fault hook corrupts before the checksums are taken, so the same
policies see those faults exactly as they see timing errors.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np

from ..accelerator import Accelerator
from ..backends.reference import ReferenceAccelerator, result_against_exact
from ..gemm_call import GemmCall, GemmResult, GemmSite
from ..stats import GemmStats
from .abft_profile import AbftProfile
from .correct import clear_out_of_range
from .cost import CostModel, RecoveryCost, main_pass_cost
from .policies import Policy, decide, gemm_gate, get_policy, registers

if TYPE_CHECKING:
    from ..llm.gemm import FaultHook  # a type only: recovery and the governor run on a board without torch


class ProtectedGemm:
    """A backend under an ABFT policy: detection on the accelerator, repair and recomputation here.

    recovery: the accelerator that recomputes flagged tiles (at its own, nominal, clock); None
    recomputes on the host with the exact int32 GEMM. measure: also compare every result with the
    exact one, before and after recovery (an oracle for experiments; it costs an extra GEMM).
    """

    def __init__(
        self,
        backend: Accelerator,
        policy: str | Policy = "none",
        profile: AbftProfile | None = None,
        recovery: Accelerator | None = None,
        *,
        nominal_mhz: float | None = None,
        cost_model: CostModel | None = None,
        measure: bool = False,
        voltage_ratio: float = 1.0,
    ) -> None:
        self.backend = backend
        self.policy = get_policy(policy)
        self.profile = profile
        self.recovery = recovery
        self.nominal_mhz = nominal_mhz if nominal_mhz is not None else backend.clock_mhz
        self.cost_model = cost_model if cost_model is not None else CostModel()
        self.measure = measure
        self.voltage_ratio = voltage_ratio
        self.last_stats: GemmStats | None = None
        self.last_cost: RecoveryCost | None = None
        self.cost = RecoveryCost()

    @property
    def name(self) -> str:
        return f"{self.backend.name}+{self.policy.name}"

    def gemm(self, x: np.ndarray, w: np.ndarray, *, site: GemmSite | None = None) -> GemmResult:
        """Y = X W (int8 -> int32) on the backend, repaired under the policy, with the main pass's statistics.

        `last_stats` and `last_cost` keep the statistics and the cost of this GEMM, `cost` the sum
        over every GEMM so far.
        """
        call = GemmCall.prepare(x, w, self.backend.array_n, site)
        config = registers(self.policy, self.profile, site)
        self.backend.set_policy(config)
        main = self.backend.run(call)
        y, stats, plan = np.require(main.y, np.int32, ["C", "W"]), main.stats, call.plan
        cost = main_pass_cost(plan, self.cost_model, self.backend.clock_mhz, self.nominal_mhz, self.voltage_ratio)
        if self.measure:
            cost.elements = y.size
            # a software backend counted them already, against the same exact result
            cost.elements_wrong = np.count_nonzero(y != call.exact) if main.wrong is None else main.wrong
        gate = gemm_gate(self.policy, self.profile, site)
        decision = decide(self.policy, config, stats, y, call.x, call.w, plan, gate)
        cost.tiles_flagged = np.count_nonzero(decision.flagged)
        cost.tiles_corrected = np.count_nonzero(decision.corrected)
        if decision.recompute.any():
            cost += self._recompute(call, y, decision.recompute)
        if self.policy.clear:
            cost.elements_cleared = clear_out_of_range(y, call.x, call.w)
        if self.measure:
            # y changed only if a tile was corrected or recomputed or an element cleared
            touched = cost.tiles_corrected or cost.tiles_recomputed or cost.elements_cleared
            cost.elements_wrong_after = np.count_nonzero(y != call.exact) if touched else cost.elements_wrong
        self.last_stats = stats
        self.last_cost = cost
        self.cost += cost
        return GemmResult(y, stats)

    def _recompute(self, call: GemmCall, y: np.ndarray, tiles: np.ndarray) -> RecoveryCost:
        """Recompute the flagged tiles exactly and patch them into y; returns what that cost.

        Tile rows that need the same set of tile columns share one GEMM call of exactly those
        tiles (their X row panels against those W column panels), so a call never computes a
        tile that was not flagged and the calls are as few as there are distinct column sets.
        """
        plan = call.plan
        n = plan.array_n
        grid = tiles.reshape(plan.tiles_m, plan.tiles_n)
        groups: dict[bytes, list[int]] = defaultdict(list)
        for tm in np.flatnonzero(grid.any(axis=1)):
            groups[grid[tm].tobytes()].append(int(tm))
        cost = RecoveryCost()
        for tile_rows in groups.values():
            rows = _lines(tile_rows, n, plan.m)
            cols = _lines(np.flatnonzero(grid[tile_rows[0]]), n, plan.n)
            count = len(tile_rows) * int(grid[tile_rows[0]].sum())
            y[np.ix_(rows, cols)] = self._exact_block(call, rows, cols, count, cost)
            cost.tiles_recomputed += count
            cost.recompute_macs += count * n * n * plan.k
            cost.recompute_calls += 1
        return cost

    def _exact_block(self, call: GemmCall, rows: np.ndarray, cols: np.ndarray, tiles: int,
                     cost: RecoveryCost) -> np.ndarray:
        """The exact block y[rows, cols], recomputed on the recovery accelerator or (modeled) on the host."""
        model, k, n = self.cost_model, call.plan.k, self.backend.array_n
        if self.recovery is not None:
            block = self.recovery.gemm(np.ascontiguousarray(call.x[rows]), np.ascontiguousarray(call.w[:, cols]))
            seconds = model.call_cycles(tiles, k, n) / (self.recovery.clock_mhz * 1e6)
            cost.recompute_seconds += seconds
            cost.energy_j += model.dynamic_energy(tiles * n * n * k) + model.static_energy(seconds)
            if block.stats is None or block.stats.tiles_err == 0:
                return block.y
            cost.host_fallback_tiles += tiles
        # the host's exact GEMM is modeled (cost model); its result is the call's exact one, already computed
        seconds = model.host_seconds(tiles * n * n * k)
        cost.recompute_seconds += seconds
        cost.energy_j += model.host_energy(seconds)
        return call.exact[np.ix_(rows, cols)]


def _lines(blocks, n: int, limit: int) -> np.ndarray:
    """Row (or column) indices covered by the given tile rows (or columns), clipped to the matrix."""
    idx = (np.asarray(blocks, dtype=np.int64)[:, None] * n + np.arange(n)[None, :]).reshape(-1)
    return idx[idx < limit]


class SoftwareFaultAccelerator(ReferenceAccelerator):
    """Exact GEMMs corrupted by a software fault model inside the device, ahead of the checksums.

    The clock is only recorded, as on the reference (the fault model does not depend on it): it
    says which clock the model stands in for, so modeled time and throughput are comparable with
    the timing model's.
    """

    name = "software-fault"

    def __init__(self, fault: FaultHook, array_n: int = 8, clock_mhz: float = 100.0) -> None:
        super().__init__(array_n, nominal_mhz=clock_mhz)
        self.fault = fault

    def _run(self, call: GemmCall) -> GemmResult:
        # the fault model sees the call's site (None for a GEMM outside a model)
        y = self.fault(call.exact.copy(), call.site)
        return result_against_exact(y, call.exact, call.plan, self.policy)
