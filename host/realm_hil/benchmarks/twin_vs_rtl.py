"""Twin against RTL simulation: the same timed GEMMs at a heavy overclock, both measured in one run."""

from __future__ import annotations

import time

import numpy as np

from ..backends.registry import open_accelerator
from ..timing.device_profile import load_profile

BENCH_SHAPES = ((64, 576, 576), (64, 576, 1536), (64, 1536, 576))


def heavy_overclock_mhz(profile: str) -> float:
    """The clock at which an unvaried PE has L = 15: every PE takes the full timed path."""
    prof = load_profile(profile)
    return 1000.0 / (prof.t_base_ns + 15 * prof.tau_ns_per_bit)


def bench_twin_vs_rtl(array_n: int = 8, profile: str = "pynq-z2", seed: int = 0, shapes=BENCH_SHAPES,
                      repeats: int = 3) -> dict:
    """MAC/s of the twin and of the Verilated RTL on identical GEMMs and slack, and the speedup.

    Both backends run the full statistics path; the outputs are checked to be identical so the
    comparison is between two implementations of the same computation.
    """
    rng = np.random.default_rng(seed)
    operands = [(rng.integers(-128, 128, (m, k), dtype=np.int8), rng.integers(-128, 128, (k, n), dtype=np.int8))
                for m, k, n in shapes]
    macs = sum(x.shape[0] * x.shape[1] * w.shape[1] for x, w in operands)
    mhz = heavy_overclock_mhz(profile)
    with open_accelerator("twin", array_n=array_n, profile=profile, seed=seed) as twin, \
            open_accelerator("sim", array_n=array_n, profile=profile, seed=seed) as sim:
        twin.set_clock(mhz, force=True)
        sim.set_clock(mhz, force=True)
        expected = [twin.gemm(x, w).y for x, w in operands]  # warm-up: kernel load and first-touch
        twin_s = min(_timed(twin, operands) for _ in range(repeats))
        start = time.perf_counter()
        for (x, w), y in zip(operands, expected, strict=True):
            if not np.array_equal(sim.gemm(x, w).y, y):
                raise RuntimeError("twin and RTL disagree: the benchmark compares different computations")
        rtl_s = time.perf_counter() - start
    return {
        "profile": profile,
        "clock_mhz": round(mhz, 3),
        "array_n": array_n,
        "macs": macs,
        "twin_macs_per_s": macs / twin_s,
        "rtl_macs_per_s": macs / rtl_s,
        "speedup": rtl_s / twin_s,
    }


def _timed(acc, operands) -> float:
    start = time.perf_counter()
    for x, w in operands:
        acc.gemm(x, w)
    return time.perf_counter() - start
