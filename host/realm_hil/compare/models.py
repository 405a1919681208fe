"""Error models run on a workload at one clock: the hardware itself and the software models to judge.

Every model yields a `Run`: the INT32 outputs of each GEMM and the statistics the statistics unit
reports (or would report) for them, so the metrics treat hardware and models through one path.
The two statistical models (realm_hil/error_models.py, sampled as `run` injects them) are fitted
to the hardware's measurement at the same clock, which is the most favourable setting for them:
any remaining distance is a flaw of the model's form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..accelerator import Accelerator
from ..backends.reference import stats_against_exact
from ..error_models import PerBitModel, RealmModel
from ..stats import GemmStats
from ..tiling import plan_for
from ..workload import Gemm


@dataclass
class Run:
    """One model's outputs on a workload at one clock."""

    model: str
    mhz: float
    outputs: list[np.ndarray]
    stats: list[GemmStats]


def run_accelerator(acc: Accelerator, model: str, workload: Sequence[Gemm], mhz: float) -> Run:
    """Run the workload on a backend at `mhz`; its own statistics are kept (read from hardware on sim/board)."""
    applied = acc.set_clock(mhz)
    results = [acc.gemm(gemm.x, gemm.w) for gemm in workload]
    return Run(model, applied, [r.y for r in results], [r.stats for r in results])


def _with_stats(model: str, mhz: float, outputs: list[np.ndarray], workload: Sequence[Gemm],
                exact: Sequence[np.ndarray], array_n: int, policy) -> Run:
    stats = [stats_against_exact(y, ref, plan_for(g.x, g.w, array_n), policy)
             for y, ref, g in zip(outputs, exact, workload, strict=True)]
    return Run(model, mhz, outputs, stats)


def run_statistical(model: RealmModel | PerBitModel, workload: Sequence[Gemm], exact: Sequence[np.ndarray],
                    mhz: float, array_n: int, policy, seed: int | np.random.SeedSequence) -> Run:
    """The model's faults on the exact outputs, one generator over the GEMMs in order (as `run` injects them)."""
    rng = np.random.default_rng(seed)
    outputs = [model.corrupt(ref, rng) for ref in exact]
    return _with_stats(model.name, mhz, outputs, workload, exact, array_n, policy)
