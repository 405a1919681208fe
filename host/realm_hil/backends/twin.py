"""Software twin: the timing model in a compiled kernel, bit for bit what the RTL emulation computes."""

from __future__ import annotations

from ..accelerator import Accelerator
from ..gemm_call import GemmCall, GemmResult
from ..operating_point import OperatingPoint
from ..stats import GemmStats, tile_stats_sparse
from ..timing.modeled_array import DieReading, ModeledArray
from ..timing.thermal import Environment
from ..timing.twin_kernel import timed_checksums, timed_gemm
from .reference import exact_stats, stats_against_exact

DEFAULT_PROFILE = "pynq-z2"


class TwinAccelerator(Accelerator):
    """emulate_checks=True puts the checksum accumulators in the overclocked region too (EMU_CHECKS=1)."""

    name = "twin"

    def __init__(self, array_n: int = 8, profile: str = DEFAULT_PROFILE, seed: int = 0,
                 voltage_v: float | None = None, emulate_checks: bool = False,
                 environment: Environment | None = None) -> None:
        super().__init__(array_n)
        self.array = ModeledArray(profile, array_n, seed, emulate_checks, voltage_v, environment)

    def _run(self, call: GemmCall) -> GemmResult:
        result = self._compute(call)
        self.array.spend(call.plan)  # the die heats with the cycles the GEMM took, as the sim's does
        return result

    def _compute(self, call: GemmCall) -> GemmResult:
        plan, array = call.plan, self.array
        if array.exact:
            return GemmResult(call.exact.copy(), exact_stats(plan, self.policy))
        y = timed_gemm(call.x, call.w, array.slack, self.array_n)
        if array.check_slack is None:
            return GemmResult(y, stats_against_exact(y, call.exact, plan, self.policy))
        d, e = timed_checksums(call.x, call.w, y, array.check_slack, self.array_n)
        return GemmResult(y, GemmStats(tile_stats_sparse(d, e, self.policy), (plan.tiles_m, plan.tiles_n), d, e))

    @property
    def operating_point(self) -> OperatingPoint:
        return self.array.point

    @property
    def die(self) -> DieReading:
        return self.array.reading()

    @property
    def nominal(self) -> OperatingPoint:
        return self.array.nominal

    def set_operating_point(self, point: OperatingPoint, *, force: bool = False) -> OperatingPoint:
        self._check_open()
        return self.array.set(point, force=force)

    def info(self) -> dict:
        return {**super().info(), "profile": self.array.profile.name, "seed": self.array.seed,
                "emulate_checks": self.array.checks}
