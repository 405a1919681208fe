"""Run a workload on the hardware and through every software model at each clock, and compare."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..accelerator import Accelerator
from ..error_models import PerBitModel, RealmModel
from ..tiling import int32_gemm
from ..workload import Gemm
from .metrics import Distances, ErrorProfile, distances, error_profile
from .models import run_accelerator, run_statistical

HARDWARE = "hardware"
MODELS = ("realm", "per-bit", "twin")


@dataclass
class ClockComparison:
    requested_mhz: float
    profiles: dict[str, ErrorProfile]  # HARDWARE and every model
    distances: dict[str, Distances]  # every model against HARDWARE

    @property
    def mhz(self) -> float:
        return self.profiles[HARDWARE].mhz


@dataclass
class Comparison:
    hardware_backend: str
    workload: list[Gemm]
    clocks: list[ClockComparison]
    bit: int
    seed: int


def compare_clock(hardware: Accelerator, twin: Accelerator, workload: Sequence[Gemm], exact: Sequence[np.ndarray],
                  index: int, mhz: float, *, bit: int = 30, seed: int = 0) -> ClockComparison:
    """The clock at position `index` of a comparison: hardware against each model (the clocks are left set)."""
    hw_run = run_accelerator(hardware, HARDWARE, workload, mhz)
    hw = error_profile(hw_run, workload, exact)
    # a distinct stream per clock (by its place in the comparison's clock list, never by which worker or
    # when it ran), so the models' draws at two clocks are not correlated
    model_seed = np.random.SeedSequence([seed, index])
    n, policy = hardware.array_n, hardware.policy
    runs = [
        run_statistical(RealmModel(hw.element_error_rate, bit), workload, exact, hw.mhz, n, policy,
                        model_seed.spawn(1)[0]),
        run_statistical(PerBitModel(hw.bit_error_rates), workload, exact, hw.mhz, n, policy,
                        model_seed.spawn(1)[0]),
        run_accelerator(twin, "twin", workload, mhz),
    ]
    profiles = {HARDWARE: hw} | {r.model: error_profile(r, workload, exact) for r in runs}
    return ClockComparison(mhz, profiles, {m: distances(profiles[m], hw) for m in MODELS})


def compare_models(
    hardware: Accelerator,
    twin: Accelerator,
    workload: Sequence[Gemm],
    clocks_mhz: Sequence[float],
    *,
    bit: int = 30,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Comparison:
    """Hardware against realm, per-bit and twin at each clock; both backends' clocks are restored."""
    exact = [int32_gemm(g.x, g.w) for g in workload]
    restore = [(acc, acc.clock_mhz) for acc in (hardware, twin)]
    results = []
    try:
        for index, mhz in enumerate(clocks_mhz):
            results.append(compare_clock(hardware, twin, workload, exact, index, mhz, bit=bit, seed=seed))
            if progress:
                progress(index + 1, len(clocks_mhz))
    finally:
        for acc, mhz in restore:
            acc.set_clock(mhz)
    return Comparison(hardware.name, list(workload), results, bit, seed)
