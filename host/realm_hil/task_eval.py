"""`eval`: lm-evaluation-harness task scores of the W8A8 model whose GEMMs run on a backend, per clock and policy.

The same operating points as `run` (offloaded.py: clocks x error models x ABFT policies, with the
same recovery cost columns), measured by the harness's own tasks instead of perplexity, next to
the float model's and the error-free W8A8 model's scores (llm/harness.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from . import __version__
from .errors import InputError
from .experiment import RunConfig
from .llm.harness import TaskResults, Tasks, harness_version, model_lm
from .llm.model import load_model
from .offloaded import OffloadedModel
from .results import atomic_write_json, atomic_write_text

# (done, total, label) before each evaluation of the tasks
Progress = Callable[[int, int, str], None]


@dataclass
class EvalConfig:
    run: RunConfig  # backend, model, clocks, policies, error models, selection: as `run` takes them
    tasks: list[str]
    include_path: str | None = None  # a directory of task YAML files besides the harness's registry
    limit: int | None = None  # documents per task (the harness's limit), for a quick look
    num_fewshot: int | None = None  # None: each task's own

    def __post_init__(self) -> None:
        if not self.tasks:
            raise InputError("give at least one lm-evaluation-harness task")
        if self.limit is not None and self.limit < 1:
            raise InputError(f"limit must be at least 1 document per task, got {self.limit}")
        if self.num_fewshot is not None and self.num_fewshot < 0:
            raise InputError(f"num_fewshot must be at least 0, got {self.num_fewshot}")
        if self.run.confirm_on is not None or self.run.generate:
            raise InputError("eval scores tasks: --confirm and --generate belong to run")


@dataclass
class EvalRow:
    backend: str
    error_model: str
    clock_mhz: float
    policy: str
    scores: dict[str, dict[str, float]]  # task -> metric -> value (the harness's metric names)
    delta_float: dict[str, dict[str, float]]
    delta_w8a8: dict[str, dict[str, float]]
    samples: dict[str, int]
    gemms: int
    tiles: int
    tiles_err: int
    tiles_recover: int
    element_error_rate: float
    tiles_recomputed: int
    tiles_corrected: int
    elements_cleared: int
    residual_errors: int
    recompute_fraction: float
    throughput: float
    energy: float
    seconds: float
    die_temp_c: float | None = None  # a board's, when the row's evaluation ended (offloaded.PointCost)
    vccint_v: float | None = None


@dataclass
class EvalReport:
    config: EvalConfig
    model: str
    harness: str  # lm-evaluation-harness version
    float_scores: TaskResults
    w8a8_scores: TaskResults
    rows: list[EvalRow]
    breakdown: dict
    seed: int
    version: str = __version__

    @property
    def columns(self) -> list[tuple[str, str]]:
        return self.w8a8_scores.metrics()

    def table(self) -> str:
        cfg = self.config
        shots = "each task's own shots" if cfg.num_fewshot is None else f"{cfg.num_fewshot}-shot"
        docs = ", ".join(f"{t} {n} docs" for t, n in self.w8a8_scores.samples.items())
        names = [f"{t} {m}" for t, m in self.columns]
        width = max(14, *map(len, names)) + 2
        lines = [f"{self.model} on {cfg.run.backend}: lm-evaluation-harness {self.harness}, {shots}; {docs}",
                 f"{'task metric':<{width}}{'float':>8}{'W8A8':>8}"]
        for (task, metric), name in zip(self.columns, names, strict=True):
            lines.append(f"{name:<{width}}{self.float_scores.scores[task][metric]:>8.3f}"
                         f"{self.w8a8_scores.scores[task][metric]:>8.3f}")
        lines.append(f"{'backend':<10}{'errors':<8}{'clock MHz':>10}  {'ABFT':<12}"
                     + "".join(f"{n:>{width}}" for n in names)
                     + f"{'elem rate':>10}{'tiles err':>10}{'recomp %':>9}{'fixed':>7}{'residual':>9}{'thrpt x':>8}"
                       f"{'energy x':>9}{'seconds':>8}")
        for r in self.rows:
            cells = "".join(f"{_cell(r.scores[t][m], r.delta_w8a8[t][m]):>{width}}" for t, m in self.columns)
            lines.append(f"{r.backend:<10}{r.error_model:<8}{r.clock_mhz:>10.2f}  {r.policy:<12}{cells}"
                         f"{r.element_error_rate:>10.2e}{r.tiles_err:>10}{100 * r.recompute_fraction:>9.3f}"
                         f"{r.tiles_corrected:>7}{r.residual_errors:>9}{r.throughput:>8.3f}{r.energy:>9.3f}"
                         f"{r.seconds:>8.1f}")
        lines.append("(score, in brackets its change from the error-free W8A8 score)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"version": self.version, "harness": self.harness, "config": asdict(self.config), "model": self.model,
                "seed": self.seed, "float_scores": asdict(self.float_scores),
                "w8a8_scores": asdict(self.w8a8_scores), "rows": [asdict(r) for r in self.rows],
                "breakdown": self.breakdown}

    def save(self, out_dir: Path) -> None:
        atomic_write_json(Path(out_dir) / "results.json", self.to_dict())
        atomic_write_text(Path(out_dir) / "table.txt", self.table() + "\n")


def _cell(value: float, delta: float) -> str:
    return f"{value:.3f} ({delta:+.3f})"


def _delta(scores: dict, base: dict) -> dict:
    return {t: {m: v - base[t][m] if m in base.get(t, {}) else math.nan for m, v in ms.items()}
            for t, ms in scores.items()}


def run_eval(config: EvalConfig, progress: Progress | None = None) -> EvalReport:
    """The tasks on the float model, the error-free W8A8 model and at every operating point of config.run."""
    tasks = Tasks(config.tasks, config.include_path)  # unknown tasks and uncached data sets fail here
    with OffloadedModel.open(config.run) as offloaded:
        loaded = load_model(config.run.model)
        lm = model_lm(loaded)
        total = 2 + offloaded.points
        done = 0

        def evaluate(label: str) -> TaskResults:
            nonlocal done
            if progress is not None:
                progress(done, total, label)
            result = tasks.evaluate(lm, limit=config.limit, num_fewshot=config.num_fewshot, seed=config.run.seed)
            done += 1
            return result

        float_scores = evaluate("float")
        offloaded.quantize(loaded.model)
        w8a8 = evaluate("W8A8 reference")  # with every GEMM selected: its log holds every site the tasks run
        offloaded.select()
        measured = offloaded.measure_points(lambda point: evaluate(point.label()))
        if progress is not None:
            progress(total, total, "done")
    rows = [EvalRow(m.point.backend, m.point.error_model, m.point.clock_mhz, m.point.policy, m.value.scores,
                    _delta(m.value.scores, float_scores.scores), _delta(m.value.scores, w8a8.scores), m.value.samples,
                    **asdict(m.cost)) for m in measured]
    breakdown = {m.point.key(): m.breakdown for m in measured}
    return EvalReport(config, loaded.name, harness_version(), float_scores, w8a8, rows, breakdown, config.run.seed)
