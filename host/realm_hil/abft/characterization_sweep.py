"""The characterization sweep: a metric (perplexity by default) under controlled GEMM errors on a (MSD, freq) grid.

For one grid point (log2 MSD, log2 freq), every targeted INT32 GEMM output (one component, the
layers of one layer group, one stage) gets `freq` erroneous elements at seeded random positions
whose magnitudes sum to MSD, with random signs; every other GEMM is exact (torch._int_mm). The
metric's damage over the error-free W8A8 model (the perplexity increase, or as abft/sweep_metric.py
states for top-1 agreement and task scores) says whether the point is critical.

Magnitude split: equal, MSD // freq per element and the remainder spread as +1 over the first
elements, so the sum is exactly MSD. Equal magnitudes make freq the number of equally harmful
errors, which is what the per-tile rule's freq_eff counts (docs/abft-statistics.md derives the
tile rule under the same split). Points need 1 <= MSD / freq <= 2^31 (an INT32 deviation is at
most 2^31); others are infeasible and skipped. Two errors landing in one column of one tile add in the
column checksum (and may cancel), so the deviation hardware would see can be slightly below
the nominal point on dense grids; at the sparse densities that matter (freq << M x N) it is rare.

Positions and signs depend on the point's component, group, stage and freq but not on its MSD:
along a row of the grid only the magnitudes grow, so perplexity rises with MSD except for noise
(a perturbation of any size moves perplexity by a few tenths on short texts). Criticality is read
off the row after a monotone (isotonic) fit of the damage in MSD, which removes isolated noisy
points that would otherwise each drag the fitted boundary with them.

The points form a campaign (realm_hil/campaign/): each finished point is a file of its own, so an
interrupted sweep resumes where it stopped, and the points can run on a process pool or a Ray cluster.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from realm_hil.abft.sweep_metric import SweepMetric
from realm_hil.campaign import CampaignJob
from realm_hil.campaign import point_key as campaign_key
from realm_hil.errors import InputError
from realm_hil.llm.gemm import GemmRouter, GemmSite
from realm_hil.llm.harness import Tasks, model_lm, task_scorer
from realm_hil.llm.model import DEFAULT_MODEL, load_model
from realm_hil.llm.offload import W8A8Config, quantize_model
from realm_hil.llm.perplexity import perplexity
from realm_hil.llm.selection import ATTENTION_COMPONENTS, LINEAR_COMPONENTS, STAGES, Selection
from realm_hil.llm.text import DEFAULT_TEXT, check_text_source, load_text, token_windows

MAX_ABS_DEVIATION = 1 << 31
# Grid axes are log2 values: MSD sums INT32 deviations in a 64-bit statistics register.
MAX_LOG2 = 63
# Bumped whenever the injected errors of a point change, so an old sweep cannot be resumed into a new one.
INJECTION_VERSION = 2


@dataclass(frozen=True)
class Grid:
    """log2 MSD and log2 freq values of the sweep, like the axes of the paper's figure."""

    log2_msd: tuple[int, ...] = tuple(range(8, 41, 4))
    log2_freq: tuple[int, ...] = tuple(range(0, 13, 2))

    def __post_init__(self) -> None:
        for name, values in (("msd", self.log2_msd), ("freq", self.log2_freq)):
            if not values or any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_LOG2
                                 for v in values):
                raise InputError(f"grid {name} axis {values!r} must hold log2 values in [0, {MAX_LOG2}]")
        if next(self.points(), None) is None:
            raise InputError(
                f"grid {self.spec()} has no feasible point: an MSD needs log2 freq <= log2 MSD <= log2 freq + 31 "
                "(at least one error per unit of MSD, at most 2^31 per INT32 error)"
            )

    @classmethod
    def parse(cls, spec: str) -> Grid:
        """ "msd=8:40:4,freq=0:12:2" (start:stop:step, stop included) or explicit "msd=10/20/30,freq=0/4"."""
        axes = {}
        for part in spec.split(","):
            name, sep, values = part.strip().partition("=")
            if not sep or name not in ("msd", "freq"):
                raise InputError(f"bad grid {spec!r}: use e.g. 'msd=8:40:4,freq=0:12:2'")
            axes[name] = _axis(values, name)
        missing = {"msd", "freq"} - set(axes)
        if missing:
            raise InputError(f"bad grid {spec!r}: missing axis {', '.join(sorted(missing))}")
        return cls(axes["msd"], axes["freq"])

    def spec(self) -> str:
        return f"msd={'/'.join(map(str, self.log2_msd))},freq={'/'.join(map(str, self.log2_freq))}"

    def points(self) -> Iterator[tuple[int, int]]:
        """Feasible (log2 MSD, log2 freq) pairs."""
        for m in self.log2_msd:
            for f in self.log2_freq:
                if feasible(m, f):
                    yield m, f


def _axis(values: str, name: str) -> tuple[int, ...]:
    parts = values.split(":") if ":" in values else values.split("/")
    try:
        numbers = [int(v) for v in parts]
    except ValueError:
        raise InputError(f"bad {name} axis {values!r}: use start:stop:step or a/b/c (log2 values)") from None
    # bounds before the range is built, so 0:10**12:1 is refused without expanding it
    if ":" in values:
        if len(numbers) != 3 or numbers[2] <= 0 or numbers[0] > numbers[1]:
            raise InputError(f"bad {name} axis {values!r}: use start:stop:step, start <= stop, step >= 1 (log2)")
        bounds = numbers[:2]
    else:
        bounds = numbers
    if min(bounds) < 0 or max(bounds) > MAX_LOG2:
        raise InputError(f"{name} axis {values!r} must hold log2 values in [0, {MAX_LOG2}]")
    if ":" in values:
        start, stop, step = numbers
        return tuple(range(start, stop + 1, step))
    return tuple(sorted(set(numbers)))


def feasible(log2_msd: int, log2_freq: int) -> bool:
    return log2_freq <= log2_msd <= log2_freq + 31


@dataclass
class SumDeviation:
    """Fault hook: `freq` errors per GEMM with magnitudes summing to `msd`, random signs and positions."""

    msd: int
    freq: int
    seed: int
    gemms: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not 1 <= self.freq <= self.msd <= self.freq * MAX_ABS_DEVIATION:
            raise InputError(f"need 1 <= freq <= msd <= freq * 2^31, got msd={self.msd}, freq={self.freq}")
        self._rng = np.random.default_rng(self.seed)
        base, extra = divmod(self.msd, self.freq)
        self._magnitudes = np.full(self.freq, base, dtype=np.int64)
        self._magnitudes[:extra] += 1

    def errors(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Flat positions and signed deviations of one GEMM's errors."""
        if self.freq > size:
            raise InputError(f"{self.freq} errors do not fit a GEMM output of {size} elements")
        positions = self._rng.choice(size, size=self.freq, replace=False)
        signs = self._rng.integers(0, 2, size=self.freq) * 2 - 1
        return positions, signs * self._magnitudes

    def __call__(self, acc: np.ndarray, site: GemmSite) -> np.ndarray:
        positions, values = self.errors(acc.size)
        acc = np.require(acc, requirements=["C", "W"])
        flat = acc.reshape(-1)
        # wrap-around like the INT32 accumulator: the hardware reads d mod 2^32
        flat[positions] = (
            (flat[positions].astype(np.int64) + values + (1 << 31)) % (1 << 32) - (1 << 31)
        ).astype(np.int32)
        self.gemms += 1
        return acc


@dataclass
class CharacterizeConfig:
    model: str = DEFAULT_MODEL
    text: str = DEFAULT_TEXT
    tokens: int = 256
    window: int = 128
    components: tuple[str, ...] = LINEAR_COMPONENTS  # each characterized on its own
    layer_groups: dict[str, str] | None = None  # name -> layer pattern; None: early / late halves
    stages: tuple[str, ...] = ("prefill",)
    grid: Grid = field(default_factory=Grid)
    seed: int = 0
    tolerance: float | None = None  # damage that makes a point critical; None: the metric's default
    array_n: int = 8
    threads: int = 1
    metric: str = "ppl"  # ppl, top1 or task:NAME (abft/sweep_metric.py)
    task_include_path: str | None = None  # task:NAME: a directory of task YAML files besides the harness's
    task_limit: int | None = None  # task:NAME: documents of the task per evaluation [all]

    def __post_init__(self) -> None:
        known = (*LINEAR_COMPONENTS, *ATTENTION_COMPONENTS)
        unknown = [c for c in self.components if c not in known]
        if unknown or not self.components:
            raise InputError(
                f"components must be some of {', '.join(known)}, got {', '.join(self.components)}"
            )
        bad = [s for s in self.stages if s not in STAGES]
        if bad or not self.stages:
            raise InputError(f"stages must be some of {', '.join(STAGES)}, got {', '.join(self.stages)}")
        if self.tokens < 2 or self.window < 2 or self.tokens < self.window:
            raise InputError(f"need 2 <= window <= tokens, got window {self.window}, tokens {self.tokens}")
        metric = SweepMetric(self.metric)
        if self.tolerance is None:
            self.tolerance = metric.default_tolerance
        if not (math.isfinite(self.tolerance) and self.tolerance > 0):
            raise InputError(f"tolerance must be a positive finite {metric.damage_label}, got {self.tolerance}")
        if metric.task is None and (self.task_include_path is not None or self.task_limit is not None):
            raise InputError("a task directory and limit are for --metric task:NAME")
        if self.task_limit is not None and self.task_limit < 1:
            raise InputError(f"task limit must be at least 1 document, got {self.task_limit}")
        if "decode" in self.stages and self.window < 4:
            raise InputError("decode characterization needs windows of at least 4 tokens")
        check_text_source(self.text)
        if self.array_n < 1 or self.threads < 1 or self.seed < 0:
            raise InputError(f"array_n and threads must be at least 1 and seed at least 0, got {self.array_n}, "
                             f"{self.threads} and {self.seed}")
        if self.layer_groups is not None:
            if not self.layer_groups:
                raise InputError("give at least one layer group, e.g. 'early=0-9;late=20-29'")
            for name, pattern in self.layer_groups.items():
                if not name or "/" in name or "=" in name:
                    raise InputError(f"layer group name {name!r} must be non-empty, without '/' or '='")
                Selection.parse(pattern)  # the syntax now; the range once the model's depth is known

    @property
    def attention(self) -> bool:
        return any(c in ATTENTION_COMPONENTS for c in self.components)

    def groups(self, num_layers: int) -> dict[str, str]:
        """Layer group name -> layer pattern for a model of `num_layers` layers (InputError if out of range)."""
        groups = self.layer_groups or default_layer_groups(num_layers)
        for pattern in groups.values():
            Selection.parse(pattern, num_layers=num_layers)
        return dict(groups)

    def identity(self, groups: dict[str, str]) -> dict:
        """What must match for a resumed sweep to continue the same experiment.

        The layer groups by what they mean: a group name alone could stand for other layers.
        """
        return {
            "model": self.model,
            "text": self.text,
            "tokens": self.tokens,
            "window": self.window,
            "seed": self.seed,
            "attention": self.attention,
            "groups": dict(groups),
            "injection": INJECTION_VERSION,
            # a perplexity sweep's identity stays what it was before metrics, so its logs still resume
            **({} if self.metric == "ppl" else {"metric": self.metric, "task_limit": self.task_limit}),
        }


def default_layer_groups(num_layers: int) -> dict[str, str]:
    half = num_layers // 2
    if half == 0:
        return {"all": f"0-{num_layers - 1}"}
    return {"early": f"0-{half - 1}", "late": f"{half}-{num_layers - 1}"}


def parse_layer_groups(spec: str) -> dict[str, str]:
    """ "early=0-9;late=20-29" -> {"early": "0-9", "late": "20-29"}."""
    groups = {}
    for part in spec.split(";"):
        name, sep, pattern = part.strip().partition("=")
        if not sep or not name.strip() or not pattern.strip():
            raise InputError(f"bad layer groups {spec!r}: use e.g. 'early=0-9;late=20-29'")
        if name.strip() in groups:
            raise InputError(f"layer group {name.strip()!r} is defined twice in {spec!r}")
        groups[name.strip()] = pattern.strip()
    return groups


@dataclass
class PointResult:
    component: str
    group: str
    stage: str
    log2_msd: int
    log2_freq: int
    ppl: float  # the metric's value at the point (the name from when it was always perplexity)
    delta: float  # the metric's damage over the error-free W8A8 model (inf when the evaluation diverged)
    critical: bool
    gemms: int  # GEMMs that received errors
    seconds: float


_POINT_TYPES = typing.get_type_hints(PointResult)


def point_key(component: str, group: str, layers: str, stage: str, log2_msd: int, log2_freq: int) -> str:
    """A point's name in messages and the progress bar."""
    return f"{component}/{group}={layers}/{stage}/{log2_msd}/{log2_freq}"


def check_against_model(config: CharacterizeConfig, model_config) -> dict[str, str]:
    """What the model's configuration settles before its weights load: layer groups, grid size.

    Returns the layer groups. The grid's largest freq must fit the largest GEMM output of the
    model at this window (rows: the window's tokens; columns: at most the hidden, MLP or window
    size); CharacterizeJob.setup checks each targeted GEMM exactly once its shapes are measured.
    """
    groups = config.groups(model_config.num_hidden_layers)
    columns = [getattr(model_config, name, 0) or 0 for name in ("hidden_size", "intermediate_size", "ffn_dim")]
    largest = config.window * max(*columns, config.window)
    top = _top_freq(config.grid)
    if 1 << top > largest:
        raise InputError(
            f"grid freq 2^{top} errors per GEMM exceed the outputs of every GEMM of {config.model} "
            f"(at most {largest} with {config.window}-token windows): use freq <= {largest.bit_length() - 1}"
        )
    return groups


def check_errors_fit(shapes: dict[tuple[str, str], tuple[int, int]], config: CharacterizeConfig) -> None:
    """Every targeted GEMM exists and can hold the grid's largest number of errors (one per output at most)."""
    top = _top_freq(config.grid)
    for stage in config.stages:
        for component in config.components:
            if (stage, component) not in shapes:
                raise InputError(f"{config.model} has no {stage} {component} GEMM to characterize")
            m, n = shapes[stage, component]
            if 1 << top > m * n:
                raise InputError(
                    f"grid freq 2^{top} errors per GEMM exceed the {m} x {n} outputs of a {stage} {component} "
                    f"GEMM: use freq <= {(m * n).bit_length() - 1} for it"
                )


def _top_freq(grid: Grid) -> int:
    return max(f for _, f in grid.points())


@dataclass
class Sweep:
    """A quantized model ready for characterization: its router, windows and clean metric values."""

    model: nn.Module
    router: GemmRouter
    windows: torch.Tensor
    num_layers: int
    clean: dict[str, float]  # stage -> the error-free W8A8 model's metric on that stage's evaluation
    shapes: dict[tuple[str, str], tuple[int, int]]  # (stage, component) -> (M, N) of its GEMM outputs
    metric: SweepMetric = field(default_factory=lambda: SweepMetric("ppl"))
    # top1: stage -> the error-free model's argmax at every scored position
    reference_top1: dict[str, torch.Tensor] = field(default_factory=dict)
    # task:NAME: () -> (score, higher is better) of the task on the model as it stands (llm/harness.py)
    task_score: Callable[[], tuple[float, bool]] | None = None
    higher_is_better: bool = True


def prepare(model: nn.Module, windows: torch.Tensor, config: CharacterizeConfig,
            task_score: Callable[[], tuple[float, bool]] | None = None) -> Sweep:
    """Quantize `model` in place (W8A8 through one router) and measure its error-free metric values."""
    router = quantize_model(model, W8A8Config(attention=config.attention))
    num_layers = model.config.num_hidden_layers
    sweep = Sweep(model, router, windows, num_layers, {}, {}, SweepMetric(config.metric), task_score=task_score)
    if sweep.metric.task is not None and task_score is None:
        raise ValueError("a task metric needs the task's scorer")
    router.log.clear()
    for stage in config.stages:
        if sweep.metric.kind == "top1":
            sweep.reference_top1[stage] = forward(sweep, stage)[1]
        sweep.clean[stage] = evaluate(sweep, stage)
    for record in router.log.records:
        m, _, n = record.shape
        sweep.shapes.setdefault((record.site.stage, record.site.component), (m, n))
    router.log.clear()
    return sweep


def evaluate(sweep: Sweep, stage: str) -> float:
    """The sweep's metric on the model as it stands: perplexity or top-1 agreement on the stage's
    evaluation (forward), or the task's score through the harness (its own forwards, whatever stage)."""
    if sweep.task_score is not None:
        score, sweep.higher_is_better = sweep.task_score()
        return score
    ppl, top1 = forward(sweep, stage)
    if sweep.metric.kind == "top1":
        return float((top1 == sweep.reference_top1[stage]).double().mean())
    return ppl


def forward(sweep: Sweep, stage: str) -> tuple[float, torch.Tensor]:
    """Perplexity of the stage's evaluation and the argmax next token at every position it scores:
    whole windows for prefill, the second halves for decode.

    Decode: the first half of each window is a prefill (error-free unless the hook is selected for
    prefill), the second half is generated one token at a time on the KV cache and scored, so
    errors in decode GEMMs reach exactly the predictions measured.
    """
    if stage == "prefill":
        result = perplexity(sweep.model, sweep.windows)
        return result.ppl, torch.cat([w.top1 for w in result.windows])
    nll, count, top1 = 0.0, 0, []
    with torch.no_grad():
        for window in sweep.windows:
            half = window.numel() // 2
            out = sweep.model(window[None, :half], use_cache=True)
            cache, logits = out.past_key_values, out.logits[0, -1]
            for pos in range(half, window.numel()):
                nll += float(nn.functional.cross_entropy(logits.float()[None], window[pos : pos + 1]))
                top1.append(int(logits.argmax()))
                count += 1
                if pos + 1 < window.numel():
                    out = sweep.model(window[None, pos : pos + 1], past_key_values=cache, use_cache=True)
                    cache, logits = out.past_key_values, out.logits[0, -1]
    return math.exp(nll / count) if math.isfinite(nll) else math.inf, torch.tensor(top1)


@dataclass(frozen=True)
class CharacterizePoint:
    """One grid point of one component in one layer group and stage: a campaign point (campaign/points.py).

    The group by name and layers, so a renamed group is never reused.
    """

    component: str
    group: str
    layers: str
    stage: str
    log2_msd: int
    log2_freq: int

    def label(self) -> str:
        return point_key(self.component, self.group, self.layers, self.stage, self.log2_msd, self.log2_freq)


def plan_points(config: CharacterizeConfig, groups: dict[str, str]) -> list[CharacterizePoint]:
    return [
        CharacterizePoint(c, g, groups[g], s, m, f)
        for s in config.stages
        for g in groups
        for c in config.components
        for m, f in config.grid.points()
    ]


class CharacterizeJob(CampaignJob):
    """A worker loads and quantizes the model once, then evaluates points; `sweep`: an already prepared one
    (in-process only)."""

    def __init__(self, config: CharacterizeConfig, sweep: Sweep | None = None) -> None:
        self.config, self.sweep = config, sweep

    def __getstate__(self) -> dict:
        if self.sweep is not None:
            raise InputError("a prepared sweep runs in-process only: leave out --jobs and --cluster")
        return self.__dict__

    def setup(self, board: str | None) -> Sweep:
        sweep = self.sweep if self.sweep is not None else load_sweep(self.config)
        check_errors_fit(sweep.shapes, self.config)
        return sweep

    def evaluate(self, sweep: Sweep, point: CharacterizePoint) -> dict:
        """The point's perplexity under its errors, with what the driver needs to fit without the model.

        The error-free perplexity of the point's stage and the shape of its GEMMs come with the row,
        so a driver that never loads the model (pool, cluster) can fit the classes.
        """
        p = point
        hook = SumDeviation(1 << p.log2_msd, 1 << p.log2_freq,
                            seed=_point_seed(self.config.seed, p.component, p.group, p.stage, p.log2_freq))
        sweep.router.selection = Selection.parse(p.layers, p.component, p.stage, sweep.num_layers)
        sweep.router.fault = hook
        try:
            ppl = evaluate(sweep, p.stage)
        finally:
            sweep.router.fault = None
            sweep.router.log.clear()
        if hook.gemms == 0:
            raise InputError(f"point {p.label()}: no GEMM of the model matched layers {p.layers}, component "
                             f"{p.component}, stage {p.stage}, so no error was injected")
        clean = sweep.clean[p.stage]
        delta = sweep.metric.damage(ppl, clean, sweep.higher_is_better)
        return {"ppl": ppl, "delta": delta, "critical": not delta <= self.config.tolerance, "gemms": hook.gemms,
                "clean": clean, "shape": list(sweep.shapes[p.stage, p.component])}


def point_results(points: list[CharacterizePoint], records: dict[str, dict], tolerance: float,
                  directory: Path) -> list[PointResult]:
    """The PointResults of finished campaign records, criticality refitted (label_critical)."""
    results = []
    for point in points:
        record = records[campaign_key(point)]
        row = {**asdict(point), **record["row"], "seconds": record.get("seconds")}
        results.append(_injected(_from_record(row, point.label(), directory), point.layers))
    return label_critical(results, tolerance)


def _injected(point: PointResult, layers: str) -> PointResult:
    """The point, if its errors reached at least one GEMM (a resumed log may hold one that did not)."""
    if point.gemms == 0:
        raise InputError(
            f"point {point_key(point.component, point.group, layers, point.stage, point.log2_msd, point.log2_freq)}: "
            f"no GEMM of the model matched layers {layers}, component {point.component}, "
            f"stage {point.stage}, so no error was injected"
        )
    return point


def _point_seed(seed: int, component: str, group: str, stage: str, log2_freq: int) -> list[int]:
    # Each row of the grid draws from its own stream, so a resumed sweep injects exactly what a full
    # run would, and the points of a row share positions and signs (module docstring).
    return [seed, *f"{component}/{group}/{stage}/{log2_freq}".encode()]


def _from_record(record: dict, label: str, path: Path) -> PointResult:
    """The point of a log record; a record that is not one (edited, another tool's file) is an InputError."""
    bad = []
    for name, kind in _POINT_TYPES.items():
        value = record.get(name)
        numeric = kind is float and isinstance(value, int)
        if isinstance(value, bool) != (kind is bool) or not (isinstance(value, kind) or numeric):
            bad.append(name)
    if bad:
        raise InputError(f"{path}: record {label!r} is not a characterization point "
                         f"(missing or mistyped {', '.join(bad)})")
    return PointResult(**{name: record[name] for name in PointResult.__dataclass_fields__})


# log10(1 + damage) given to diverged evaluations: above any finite perplexity seen.
DIVERGED_DAMAGE = 12.0


def damage(delta: float) -> float:
    return math.log10(1 + max(delta, 0.0)) if math.isfinite(delta) else DIVERGED_DAMAGE


def label_critical(points: list[PointResult], tolerance: float) -> list[PointResult]:
    """Points with `critical` from the monotone fit of damage over MSD along each grid row.

    Criticality is always re-derived from the recorded deltas, so a finished sweep can be
    refitted at another tolerance.
    """
    rows: dict[tuple, list[int]] = {}
    for i, p in enumerate(points):
        rows.setdefault((p.component, p.group, p.stage, p.log2_freq), []).append(i)
    threshold = math.log10(1 + tolerance)
    out = list(points)
    for members in rows.values():
        members.sort(key=lambda i: points[i].log2_msd)
        smooth = isotonic([damage(points[i].delta) for i in members])
        for i, value in zip(members, smooth, strict=True):
            out[i] = replace(points[i], critical=bool(value > threshold))
    return out


def isotonic(values: list[float]) -> list[float]:
    """Least-squares non-decreasing fit (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, count]
    for v in values:
        blocks.append([v, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m1, n1), (m2, n2) = blocks[-2], blocks.pop()
            blocks[-1] = [(m1 * n1 + m2 * n2) / (n1 + n2), n1 + n2]
    return [m for m, n in blocks for _ in range(int(n))]


def load_sweep(config: CharacterizeConfig) -> Sweep:
    """The model of `config`, quantized, with its token windows and error-free perplexities."""
    torch.set_num_threads(config.threads)
    task = SweepMetric(config.metric).task
    tasks = None if task is None else Tasks([task], config.task_include_path)  # an uncached data set fails here
    loaded = load_model(config.model)
    windows = token_windows(loaded.tokenizer, load_text(config.text), config.window, config.tokens)
    scorer = None if tasks is None else task_scorer(tasks, model_lm(loaded), config.task_limit, config.seed)
    return prepare(loaded.model, windows, config, scorer)
