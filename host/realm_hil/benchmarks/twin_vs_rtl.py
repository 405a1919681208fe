"""Twin against RTL simulation: the same timed GEMMs near the onset of errors and at a heavy overclock,
both measured in one run."""

from __future__ import annotations

import time

import numpy as np

from ..backends.registry import open_accelerator
from ..tiling import int32_gemm
from ..timing.device_profile import load_profile
from ..timing.emulation import L_EXACT
from ..timing.slack import first_error_clock, slack_table
from ..timing.twin_kernel import timed_gemm

BENCH_SHAPES = ((64, 576, 576), (64, 576, 1536), (64, 1536, 576))
# Past the first error by this much a few PEs can err (pynq-z2, 8 x 8, seed 0: one of 64).
ONSET_MARGIN_MHZ = 2.0


def heavy_overclock_mhz(profile: str) -> float:
    """The clock at which an unvaried PE of the default die (the slowest, at the nominal supply) has L = 15:
    every PE takes the full timed path."""
    prof = load_profile(profile)
    return 1000.0 / ((prof.t_base_ns + 15 * prof.tau_ns_per_bit) * prof.voltage_factor())


def bench_twin_vs_rtl(array_n: int = 8, profile: str = "pynq-z2", seed: int = 0, shapes=BENCH_SHAPES,
                      repeats: int = 3) -> list[dict]:
    """MAC/s of the twin and of the Verilated RTL on identical GEMMs and slack, one dict per clock.

    Cases: `onset` (first error clock + ONSET_MARGIN_MHZ) and `heavy` (heavy_overclock_mhz). Per case:
    `twin_kernel_macs_per_s` is the compiled kernel alone, on the sparse path where some PE cannot err
    (`sparse`: it is handed the exact product, which the LLM path computes anyway for its statistics,
    so that GEMM is timed separately as `exact_gemm_macs_per_s`), and `twin_kernel_macs_per_cpu_s` the
    same per CPU-second of all its threads, which a busy shared machine moves far less than wall-clock
    time; `twin_macs_per_s` is the twin backend end to end, statistics included; `rtl_macs_per_s` the
    sim backend, once per case, so it is measured in the same run; `speedup` is RTL time over twin
    backend time. Every result of both twin paths is checked against the RTL's, so the figures compare
    implementations of the same computation.
    """
    rng = np.random.default_rng(seed)
    operands = [(rng.integers(-128, 128, (m, k), dtype=np.int8), rng.integers(-128, 128, (k, n), dtype=np.int8))
                for m, k, n in shapes]
    clocks = {"onset": first_error_clock(profile, array_n, seed) + ONSET_MARGIN_MHZ,
              "heavy": heavy_overclock_mhz(profile)}
    with open_accelerator("twin", array_n=array_n, profile=profile, seed=seed) as twin, \
            open_accelerator("sim", array_n=array_n, profile=profile, seed=seed) as sim:
        return [_case(name, mhz, twin, sim, operands, profile, seed, repeats) for name, mhz in clocks.items()]


def _case(name: str, mhz: float, twin, sim, operands, profile: str, seed: int, repeats: int) -> dict:
    array_n = twin.array_n
    table = slack_table(profile, mhz, array_n, seed)
    can_err = int(np.count_nonzero(table < L_EXACT))
    sparse = can_err < table.size
    exact = [int32_gemm(x, w) for x, w in operands]

    def kernel(i: int) -> np.ndarray:
        x, w = operands[i]
        return timed_gemm(x, w, table, array_n, exact=exact[i] if sparse else None)

    twin.set_clock(mhz, force=True)
    sim.set_clock(mhz, force=True)
    # warm-up (kernel load, first touch), and the results the RTL must reproduce
    from_kernel = [kernel(i) for i in range(len(operands))]
    from_twin = [twin.gemm(x, w).y for x, w in operands]
    kernel_times = [_timed(kernel, len(operands)) for _ in range(repeats)]
    kernel_s, kernel_cpu_s = min(wall for wall, _ in kernel_times), min(cpu for _, cpu in kernel_times)
    exact_s = min(_timed(lambda i: int32_gemm(*operands[i]), len(operands))[0] for _ in range(repeats))
    twin_s = min(_timed(lambda i: twin.gemm(*operands[i]), len(operands))[0] for _ in range(repeats))
    start = time.perf_counter()
    for (x, w), y_kernel, y_twin in zip(operands, from_kernel, from_twin, strict=True):
        y_rtl = sim.gemm(x, w).y
        if not (np.array_equal(y_rtl, y_kernel) and np.array_equal(y_rtl, y_twin)):
            raise RuntimeError(f"twin and RTL disagree at {mhz:.3f} MHz: the benchmark compares different computations")
    rtl_s = time.perf_counter() - start
    macs = sum(x.shape[0] * x.shape[1] * w.shape[1] for x, w in operands)
    return {
        "name": name,
        "profile": profile,
        "clock_mhz": round(mhz, 3),
        "array_n": array_n,
        "pes_can_err": can_err,
        "sparse": sparse,
        "macs": macs,
        "twin_kernel_macs_per_s": macs / kernel_s,
        "twin_kernel_macs_per_cpu_s": macs / kernel_cpu_s,
        "exact_gemm_macs_per_s": macs / exact_s,
        "twin_macs_per_s": macs / twin_s,
        "rtl_macs_per_s": macs / rtl_s,
        "speedup": rtl_s / twin_s,
    }


def _timed(gemm, count: int) -> tuple[float, float]:
    """Wall-clock and process CPU seconds for gemm(0), ..., gemm(count - 1)."""
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(count):
        gemm(i)
    return time.perf_counter() - start, time.process_time() - cpu
