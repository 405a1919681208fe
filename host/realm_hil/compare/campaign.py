"""`compare` as a campaign: one point per clock, each worker with its own hardware and twin.

The driver captures the workload once and ships it with the job, so workers never load the model;
a point's row is its ClockComparison in JSON, rebuilt exactly (floats round-trip through JSON).
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..backends.registry import open_accelerator
from ..campaign import CampaignJob, Executor, point_key, run_campaign
from ..tiling import int32_gemm
from ..workload import Gemm
from .jobs import CompareConfig
from .metrics import Distances, ErrorProfile, SiteErrors
from .run import ClockComparison, Comparison, compare_clock

# ErrorProfile's arrays and their dtypes
_ARRAYS = {"bit_errors": np.int64, "log2_error": np.float64, "tile_msd": np.float64, "tile_freq": np.int64}


@dataclass(frozen=True)
class CompareClock:
    index: int  # the clock's place in the configured list: the models' seed stream (compare_clock)
    clock_mhz: float


@dataclass
class _Devices:
    stack: contextlib.ExitStack
    hardware: object
    twin: object
    exact: list


class CompareJob(CampaignJob):
    def __init__(self, config: CompareConfig, workload: list[Gemm]) -> None:
        self.config, self.workload = config, workload

    def setup(self, board: str | None) -> _Devices:
        c = self.config
        stack = contextlib.ExitStack()
        with stack:
            hardware = stack.enter_context(c.open_hardware())
            twin = stack.enter_context(open_accelerator("twin", profile=c.profile, seed=c.seed))
            devices = _Devices(stack.pop_all(), hardware, twin, [int32_gemm(g.x, g.w) for g in self.workload])
        return devices

    def evaluate(self, d: _Devices, point: CompareClock) -> dict:
        restore = [(acc, acc.clock_mhz) for acc in (d.hardware, d.twin)]
        try:
            clock = compare_clock(d.hardware, d.twin, self.workload, d.exact, point.index, point.clock_mhz,
                                  bit=self.config.bit, seed=self.config.seed)
        finally:
            for acc, mhz in restore:
                acc.set_clock(mhz)
        return {"hardware": d.hardware.name, "clock": clock_to_row(clock)}

    def close(self, d: _Devices) -> None:
        d.stack.close()


def clock_to_row(clock: ClockComparison) -> dict:
    profiles = {}
    for name, p in clock.profiles.items():
        profile = {k: v for k, v in asdict(p).items() if k not in _ARRAYS and k != "sites"}
        profile |= {k: getattr(p, k).tolist() for k in _ARRAYS}
        profile["sites"] = [asdict(s) for s in p.sites]
        profiles[name] = profile
    distances = {name: {k: float(v) for k, v in asdict(d).items()} for name, d in clock.distances.items()}
    return {"requested_mhz": clock.requested_mhz, "profiles": profiles, "distances": distances}


def clock_from_row(row: dict) -> ClockComparison:
    profiles = {}
    for name, p in row["profiles"].items():
        arrays = {k: np.array(p[k], dtype=dtype) for k, dtype in _ARRAYS.items()}
        sites = [SiteErrors(**s) for s in p["sites"]]
        rest = {k: v for k, v in p.items() if k not in _ARRAYS and k != "sites"}
        profiles[name] = ErrorProfile(**rest, **arrays, sites=sites)
    return ClockComparison(row["requested_mhz"], profiles, {k: Distances(**v) for k, v in row["distances"].items()})


def run_comparison_campaign(config: CompareConfig, directory: Path, executor: Executor | None = None,
                            resume: bool = False, progress=None) -> Comparison:
    """run_comparison with its clocks as campaign points (in the configured order in the result)."""
    workload = config.capture()
    points = [CompareClock(i, float(mhz)) for i, mhz in enumerate(config.clocks_mhz)]
    result = run_campaign(points, CompareJob(config, workload), executor, directory, asdict(config), resume,
                          progress)
    rows = [result.records[point_key(p)]["row"] for p in points]
    return Comparison(rows[0]["hardware"], list(workload), [clock_from_row(r["clock"]) for r in rows],
                      config.bit, config.seed)
