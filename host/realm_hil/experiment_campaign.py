"""`run`'s grid as a campaign: one point per clock, with every error model and policy at that clock.

A clock is the natural point: the realm rows take their element error rate from the timing rows of
the same clock (offloaded.matched_rate), never from another clock's. A worker opens the devices and
loads, quantizes and evaluates the model (float, error-free W8A8) once, then measures clocks; a
point's row holds its RunRows and what the driver needs to report without loading the model.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from pathlib import Path

from .campaign import CampaignJob, Executor, Timed, point_key, run_campaign
from .campaign.executors import InProcess
from .errors import InputError
from .experiment import Prepared, RunConfig, RunReport, RunRow, prepare
from .offloaded import OffloadedModel
from .timing.thermal import ThermalEnvironment


@dataclass(frozen=True)
class RunClock:
    clock_mhz: float  # as requested; the rows carry the clock the backend applied


@dataclass
class _State:
    stack: contextlib.ExitStack
    prepared: Prepared
    generation: dict | None  # the run's generation summary, the same at every clock
    threads: int


class RunJob(CampaignJob):
    def __init__(self, config: RunConfig) -> None:
        self.config = config

    def setup(self, board: str | None) -> _State:
        import torch

        # one core per worker: the executor is the parallelism (as GuardbandJob)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        stack = contextlib.ExitStack()
        with stack:
            prepared = prepare(self.config, stack.enter_context(OffloadedModel.open(self.config)))
            state = _State(stack.pop_all(), prepared, prepared.generation_summary(), threads)
        return state

    def evaluate(self, state: _State, point: RunClock) -> Timed:
        prepared = state.prepared
        measured = prepared.measure([point.clock_mhz])
        # a row's time is kept beside the point's row (the campaign's record), never in it
        rows = [{k: v for k, v in asdict(r).items() if k != "seconds"} for r in measured.rows]
        return Timed({"model": prepared.loaded.name, "tokens": prepared.tokens, "float_ppl": prepared.float_ppl,
                      "w8a8_ppl": prepared.w8a8.ppl, "generation": state.generation, "rows": rows,
                      "breakdown": measured.breakdown, "continuations": measured.continuations},
                     [r.seconds for r in measured.rows])

    def close(self, state: _State) -> None:
        import torch

        state.stack.close()
        torch.set_num_threads(state.threads)


def check_campaign(config: RunConfig, executor: Executor) -> None:
    """What cannot split into independent clocks fails here, in one line, before any device opens."""
    if config.governor is not None:
        raise InputError("--governor moves the clock within one evaluation: it does not run as a campaign "
                         "(leave out --jobs, --cluster, --campaign-dir and --resume)")
    if config.confirm_on is not None:
        raise InputError("--confirm reruns one point after the grid: it does not run as a campaign "
                         "(leave out --jobs, --cluster, --campaign-dir and --resume)")
    if isinstance(config.environment, ThermalEnvironment):
        raise InputError("with --ambient the die's temperature carries from one clock to the next: it does not "
                         "split into campaign points (leave out --jobs, --cluster, --campaign-dir and --resume)")
    if config.backend == "board" and not isinstance(executor, InProcess):
        raise InputError("one board serves one worker at a time: run a board's grid with --jobs 1")


def run_experiment_campaign(config: RunConfig, directory: Path | str, executor: Executor | None = None,
                            resume: bool = False, progress=None) -> RunReport:
    """run_experiment with its clocks as campaign points in `directory`; the report lists the rows in clock
    order, whichever executor ran them, each with the seconds its worker measured for it."""
    executor = executor or InProcess()
    check_campaign(config, executor)
    # the devices open and every clock is tried (and the profile and selection checked) before any worker starts
    with OffloadedModel.open(config) as offloaded:
        clocks = offloaded.clocks
    points = [RunClock(float(c)) for c in clocks]
    result = run_campaign(points, RunJob(config), executor, directory, {"run": asdict(config)}, resume, progress)
    records = [result.records[point_key(p)] for p in points]
    rows, breakdown, continuations = [], {}, {}
    for record in records:
        row = record["row"]
        if len(record.get("part_seconds") or ()) != len(row["rows"]):
            raise InputError(f"{directory}: point {record['key']} has no time per row (an older realm-hil wrote "
                             "it): run the campaign again in a new directory")
        rows += [RunRow(**r, seconds=s) for r, s in zip(row["rows"], record["part_seconds"], strict=True)]
        breakdown |= row["breakdown"]
        continuations |= row["continuations"]
    first = records[0]["row"]
    generation = first["generation"]
    if generation is not None:
        generation = {**generation, "continuations": continuations}
    return RunReport(config, first["model"], first["tokens"], first["float_ppl"], first["w8a8_ppl"], rows, breakdown,
                     config.seed, generation=generation)
