"""The clock sweep as a campaign: one point per clock, spread over workers or over boards.

With boards (`--board HOST:PORT`, repeatable), each worker holds one board (a Ray resource,
campaign/ray_executor.py) and runs its clocks there; without, each worker opens the sweep's own
backend. Every worker builds the same workload from the sweep's seed, so a point's row depends only
on its clock and the die that computed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .backends.registry import open_accelerator, options_for
from .campaign import CampaignJob, Executor, point_key, run_campaign
from .errors import InputError
from .sweep import SweepConfig, SweepPoint, sweep_clock
from .workload import random_workload


@dataclass(frozen=True)
class ClockPoint:
    clock_mhz: float


@dataclass
class _State:
    acc: object
    workload: list


class ClockSweepJob(CampaignJob):
    def __init__(self, config: SweepConfig, boards: bool = False) -> None:
        if config.workload != "random":
            raise InputError("a clock sweep campaign takes the random workload")
        self.config, self.needs_board = config, boards

    def setup(self, board: str | None) -> _State:
        c = self.config
        acc = (open_accelerator("board", options_for("board", address=board)) if board is not None
               else open_accelerator(c.backend, c.backend_options()))
        return _State(acc, random_workload(count=c.gemms, seed=c.seed))

    def evaluate(self, state: _State, point: ClockPoint) -> dict:
        (result,) = sweep_clock(state.acc, state.workload, [point.clock_mhz])
        row = asdict(result)
        row["bit_errors"] = [int(b) for b in result.bit_errors]
        return row

    def close(self, state: _State) -> None:
        state.acc.close()


def run_clock_campaign(config: SweepConfig, clocks_mhz: list[float], directory: Path,
                       executor: Executor | None = None, boards: Sequence[str] = (),
                       resume: bool = False, progress=None) -> list[SweepPoint]:
    """The sweep's points at `clocks_mhz`, in clock order; `boards`: the addresses the executor places its
    workers on (each board is its own die, so they are part of the campaign's identity)."""
    points = [ClockPoint(float(c)) for c in clocks_mhz]
    identity = {"sweep": asdict(config), "boards": sorted(boards)}
    result = run_campaign(points, ClockSweepJob(config, bool(boards)), executor, directory, identity, resume,
                          progress)
    rows = [result.records[point_key(p)]["row"] for p in points]
    return [SweepPoint(**{**row, "bit_errors": np.array(row["bit_errors"])}) for row in rows]
