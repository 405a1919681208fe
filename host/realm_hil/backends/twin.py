"""Software twin: the timing model in a compiled kernel, bit for bit what the RTL emulation computes."""

from __future__ import annotations

import numpy as np

from ..stats import GemmStats, tile_stats_sparse
from ..tiling import int32_gemm, plan_for
from ..timing.modeled_clock import ModeledClock
from ..timing.twin_kernel import timed_checksums, timed_gemm
from .base import Accelerator
from .reference import exact_stats, stats_against_exact

DEFAULT_PROFILE = "pynq-z2"


class TwinAccelerator(Accelerator):
    """emulate_checks=True puts the checksum accumulators in the overclocked region too (EMU_CHECKS=1)."""

    name = "twin"

    def __init__(self, array_n: int = 8, profile: str = DEFAULT_PROFILE, seed: int = 0,
                 voltage: float | None = None, emulate_checks: bool = False) -> None:
        super().__init__(array_n)
        self.clock = ModeledClock(profile, array_n, seed, voltage, checks=emulate_checks)

    def _gemm(self, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, GemmStats]:
        plan = plan_for(x, w, self.array_n)
        if self.clock.exact:
            y = int32_gemm(x, w)
            return y, exact_stats(y, plan, self.policy)
        y = timed_gemm(x, w, self.clock.slack, self.array_n)
        if self.clock.check_slack is None:
            return y, stats_against_exact(y, int32_gemm(x, w), plan, self.policy)
        d, e = timed_checksums(x, w, y, self.clock.check_slack, self.array_n)
        return y, GemmStats(tile_stats_sparse(d, e, self.policy), (plan.tiles_m, plan.tiles_n), d, e)

    def set_clock(self, mhz: float, *, force: bool = False, voltage: float | None = None) -> float:
        self._check_open()
        return self.clock.set(mhz, force=force, voltage=voltage)

    @property
    def clock_mhz(self) -> float:
        return self.clock.mhz

    def info(self) -> dict:
        return {**super().info(), "profile": self.clock.profile.name, "seed": self.clock.seed,
                "emulate_checks": self.clock.checks}
