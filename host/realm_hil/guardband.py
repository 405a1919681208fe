"""The guardband experiment: how much of the rated clock's margin each strategy recovers, and at what cost.

SmolLM2-135M perplexity windows run on the twin for several dies (seeds) in several ambient
traces, under four strategies: the rated clock; static tuning (each die's highest error-free clock
at the start temperature, then held); the oracle (each die's highest error-free clock at every
GEMM, from the model: its slowest PE at L = 31 at the current junction temperature); and the
governor (governor.py) with each ABFT policy. The first three run unprotected (policy none):
whatever errors they meet go through, and the run's oracle counts them.

The grid is independent points (die, trace, strategy, policy), each a pure function of its key,
the campaign seed and the config (`run_point`), so a campaign layer can distribute them. Device
time is the die's thermal clock: the workload's array time at the rated clock, compressed so that
it spans `trace_seconds` of the ambient trace (a faster strategy covers less of it; the traces
hold their last value). Governor parameters are GovernorConfig's defaults, fixed up front.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .abft.abft_profile import load_abft_profile
from .abft.cost import CostModel
from .abft.recovery import ProtectedGemm
from .backends.registry import open_accelerator
from .errors import InputError
from .governor import Fixed, Governor, GovernorConfig, WindowRecord, WindowStats, governed, plot_traces, write_trace
from .operating_point import OperatingPoint
from .results import atomic_write_json, atomic_write_text
from .timing.device_profile import load_profile
from .timing.slack import first_error_clock
from .timing.thermal import AmbientTrace, ThermalEnvironment

STRATEGIES = ("rated", "static", "oracle", "governor")
GOVERNOR_POLICIES = ("none", "classic", "statistical", "correct")


def ambient_traces(seconds: float) -> dict[str, AmbientTrace]:
    """The ambients: constant 25 C and 45 C, and a warm-up 25 -> 70 C over half the run after a tenth at 25 C."""
    return {"25C": AmbientTrace.constant(25.0), "45C": AmbientTrace.constant(45.0),
            "warmup": AmbientTrace.ramp(25.0, 70.0, 0.5 * seconds, hold_s=0.1 * seconds)}


@dataclass(frozen=True)
class PointKey:
    die: int  # the die's index in the campaign; its seed comes from it and the campaign seed
    trace: str
    strategy: str
    policy: str


@dataclass
class GuardbandConfig:
    dies: int = 3
    traces: tuple[str, ...] = ("25C", "45C", "warmup")
    tokens: int = 512
    window: int = 128
    campaign_seed: int = 0
    trace_seconds: float = 600.0  # thermal seconds the workload spans at the rated clock (10 tau on pynq-z2)
    profile: str = "pynq-z2"
    abft_profile: str = "smollm2-135m"
    model: str | None = None  # None: the default model
    text: str | None = None  # None: the default text
    governor: GovernorConfig = field(default_factory=GovernorConfig)
    quick: bool = False

    def __post_init__(self) -> None:
        if self.dies < 1:
            raise InputError(f"give at least one die, got {self.dies}")
        unknown = set(self.traces) - set(ambient_traces(1.0))
        if unknown or not self.traces:
            raise InputError(f"traces are {', '.join(ambient_traces(1.0))}, got {sorted(unknown) or 'none'}")
        if self.window > self.tokens or self.window < 2:
            raise InputError(f"a {self.window}-token window does not fit in {self.tokens} tokens")

    @classmethod
    def quick_preset(cls, **overrides) -> GuardbandConfig:
        """Minutes, not an hour: one die, the 25 C and warm-up traces, one 64-token window."""
        return cls(**{"dies": 1, "traces": ("25C", "warmup"), "tokens": 64, "window": 64, "quick": True,
                      **overrides})

    def points(self) -> list[PointKey]:
        keys = []
        for die in range(self.dies):
            for trace in self.traces:
                keys += [PointKey(die, trace, s, "none") for s in STRATEGIES[:3]]
                keys += [PointKey(die, trace, "governor", p) for p in GOVERNOR_POLICIES]
        return keys

    def die_seed(self, die: int) -> int:
        return int(np.random.SeedSequence(self.campaign_seed, spawn_key=(die,)).generate_state(1)[0])


@dataclass
class PointResult:
    die: int
    trace: str
    strategy: str
    policy: str
    seed: int
    process_factor: float
    throughput_x: float  # useful MAC/s with recovery, against the rated clock unprotected (abft/cost.py)
    delta_ppl: float  # against error-free W8A8
    recomputed_fraction: float
    escaped_errors: int  # output elements still wrong after recovery (the run's oracle)
    energy_x: float  # energy per useful MAC (so per token) against the rated point
    oracle_x: float | None  # throughput against the oracle's on the same die and trace
    ppl: float
    mean_clock_mhz: float
    max_tj_c: float
    outside_rated: bool  # the junction left the rated range: the model's sign-off guarantee ends there
    tiles_flagged: int
    tiles_corrected: int
    first_flag_s: float | None  # device time of the first window with a flagged tile
    first_escape_s: float | None  # ... and of the first with an escaped error
    seconds: float  # wall-clock seconds the point took here
    trace_windows: list[WindowRecord] = field(repr=False, default_factory=list)


class Oracle:
    """The die's highest error-free clock at its present junction temperature, set before every GEMM."""

    def __init__(self, profile, array_n: int, seed: int) -> None:
        self.profile, self.array_n, self.seed = profile, array_n, seed

    def _point(self, acc) -> OperatingPoint:
        die = acc.die
        edge = first_error_clock(self.profile, self.array_n, self.seed, process=die.process_factor, tj_c=die.tj_c)
        return OperatingPoint(min(edge, self.profile.clock_ceiling_mhz))

    def start(self, acc) -> OperatingPoint:
        return self._point(acc)

    def decide(self, window: WindowStats, tj_c, acc) -> tuple[OperatingPoint, str]:
        return self._point(acc), "oracle"


@dataclass
class Workload:
    """The model, its windows and the error-free W8A8 perplexity, loaded once and shared by every point."""

    model: object
    router: object
    windows: object
    w8a8_ppl: float
    rated_array_seconds: float
    name: str

    @classmethod
    def load(cls, config: GuardbandConfig) -> Workload:
        from .llm.gemm import GemmRouter
        from .llm.model import DEFAULT_MODEL, load_model
        from .llm.offload import W8A8Config, quantize_model
        from .llm.perplexity import perplexity
        from .llm.text import DEFAULT_TEXT, load_text, token_windows

        loaded = load_model(config.model or DEFAULT_MODEL)
        windows = token_windows(loaded.tokenizer, load_text(config.text or DEFAULT_TEXT), config.window,
                                config.tokens)
        router = GemmRouter()
        quantize_model(loaded.model, W8A8Config(), router)
        w8a8 = perplexity(loaded.model, windows).ppl
        profile, n, cycles = load_profile(config.profile), 8, CostModel()
        seconds = sum(cycles.call_cycles(-(-m // n) * -(-nn // n), k, n) for m, k, nn in
                      (r.shape for r in router.log.records)) / (profile.nominal_clock_mhz * 1e6)
        router.log.clear()
        return cls(loaded.model, router, windows, w8a8, seconds, loaded.name)


def run_point(key: PointKey, config: GuardbandConfig, workload: Workload) -> PointResult:
    """One grid point: a pure function of its key, the campaign seed and the config."""
    from .llm.gemm import TorchIntMM
    from .llm.perplexity import perplexity

    profile = load_profile(config.profile)
    seed = config.die_seed(key.die)
    ambient = ambient_traces(config.trace_seconds)[key.trace]
    environment = ThermalEnvironment(ambient, config.trace_seconds / workload.rated_array_seconds)
    abft = load_abft_profile(config.abft_profile)
    start = time.perf_counter()
    with open_accelerator("twin", profile=config.profile, seed=seed, environment=environment) as acc, \
            open_accelerator("twin", profile=config.profile) as recovery:
        controller, window_gemms = _controller(key, config, profile, acc)
        protected = ProtectedGemm(acc, key.policy, abft, recovery, nominal_mhz=profile.nominal_clock_mhz,
                                  measure=True)
        router = workload.router
        try:
            with governed(protected, controller, window_gemms, profile) as engine:
                router.backend = engine
                router.log.clear()
                ppl = perplexity(workload.model, workload.windows).ppl
        finally:
            router.backend = TorchIntMM()
            router.log.clear()
        process = acc.die.process_factor
    trace, cost = engine.trace, protected.cost
    if window_gemms != config.governor.window_gemms:
        trace = _rewindow(trace, config.governor.window_gemms)
    tiles = sum(r.tiles for r in trace) or 1
    tjs = [r.tj_c for r in trace]
    return PointResult(
        key.die, key.trace, key.strategy, key.policy, seed, process, cost.throughput_vs_nominal,
        ppl - workload.w8a8_ppl, cost.recompute_fraction, cost.elements_wrong_after, cost.energy_vs_nominal, None,
        ppl, sum(r.clock_mhz * r.tiles for r in trace) / tiles, max(tjs),
        any(not r.in_rated_range for r in trace), cost.tiles_flagged, cost.tiles_corrected,
        next((r.time_s for r in trace if r.flagged), None), next((r.time_s for r in trace if r.escaped), None),
        time.perf_counter() - start, trace)


def _controller(key: PointKey, config: GuardbandConfig, profile, acc):
    """The strategy's controller and its window length in GEMMs."""
    window = config.governor.window_gemms
    if key.strategy == "rated":
        return Fixed(acc.nominal), window
    if key.strategy == "static":
        # what a sweep at the start finds: the die's edge at its starting junction temperature (nothing run yet)
        die = acc.die
        edge = first_error_clock(profile, acc.array_n, acc.array.seed, process=die.process_factor, tj_c=die.tj_c)
        return Fixed(OperatingPoint(min(edge, profile.clock_ceiling_mhz))), window
    if key.strategy == "oracle":
        return Oracle(profile, acc.array_n, acc.array.seed), 1
    if key.strategy == "governor":
        return Governor(config.governor, profile), window
    raise InputError(f"unknown strategy {key.strategy!r}: choose from {', '.join(STRATEGIES)}")


def _rewindow(trace: list[WindowRecord], size: int) -> list[WindowRecord]:
    """Per-GEMM records merged into windows of `size` (the oracle decides per GEMM; its trace reads like the rest)."""
    merged = []
    for i in range(0, len(trace), size):
        part = trace[i:i + size]
        last = part[-1]
        merged.append(replace(
            last, window=len(merged), clock_mhz=sum(r.clock_mhz * r.tiles for r in part) / (sum(r.tiles for r in part)
                                                                                              or 1),
            gemms=sum(r.gemms for r in part), tiles=sum(r.tiles for r in part), flagged=sum(r.flagged for r in part),
            recover_flags=sum(r.recover_flags for r in part), corrected=sum(r.corrected for r in part),
            recomputed=sum(r.recomputed for r in part), hist=[int(v) for v in np.sum([r.hist for r in part], 0)],
            escaped=sum(r.escaped or 0 for r in part), decision="oracle"))
    return merged


@dataclass
class GuardbandReport:
    config: GuardbandConfig
    model: str
    w8a8_ppl: float
    rated_array_seconds: float
    points: list[PointResult]
    seconds: float

    ROW_FIELDS = ("die", "trace", "strategy", "policy", "throughput_x", "delta_ppl", "recomputed_fraction",
                  "escaped_errors", "energy_x", "oracle_x", "mean_clock_mhz", "max_tj_c", "outside_rated",
                  "tiles_flagged", "tiles_corrected", "first_flag_s", "first_escape_s", "process_factor", "seed",
                  "ppl", "seconds")

    def rows(self) -> list[dict]:
        return [{k: getattr(p, k) for k in self.ROW_FIELDS} for p in self.points]

    def table(self) -> str:
        c = self.config
        lines = [f"{self.model}: {c.tokens} tokens ({c.window}-token windows) per point on the twin, "
                 f"{c.profile}, W8A8 ppl {self.w8a8_ppl:.3f}; {c.trace_seconds:.0f} s of ambient trace spanned at "
                 f"the rated clock; {len(self.points)} points in {self.seconds:.0f} s",
                 f"{'die':>3} {'trace':<7}{'strategy':<9}{'policy':<12}{'thrpt x':>8}{'d ppl':>9}{'recomp %':>9}"
                 f"{'escaped':>9}{'energy x':>9}{'of oracle':>10}{'clock':>8}{'max Tj':>7}"]
        for p in self.points:
            oracle = "" if p.oracle_x is None else f"{100 * p.oracle_x:.1f} %"
            hot = "*" if p.outside_rated else ""
            lines.append(f"{p.die:>3} {p.trace:<7}{p.strategy:<9}{p.policy:<12}{p.throughput_x:>8.3f}"
                         f"{p.delta_ppl:>+9.3f}{100 * p.recomputed_fraction:>9.3f}{p.escaped_errors:>9}"
                         f"{p.energy_x:>9.3f}{oracle:>10}{p.mean_clock_mhz:>8.1f}{p.max_tj_c:>6.1f}{hot:1}")
        if any(p.outside_rated for p in self.points):
            lines.append("* the junction left the rated range: the model's sign-off guarantee ends there")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        config = asdict(self.config)
        return {"config": config, "model": self.model, "w8a8_ppl": self.w8a8_ppl,
                "rated_array_seconds": self.rated_array_seconds, "seconds": self.seconds, "rows": self.rows()}

    def save(self, out_dir: Path) -> None:
        out = Path(out_dir)
        atomic_write_json(out / "guardband.json", self.to_dict())
        atomic_write_text(out / "table.txt", self.table() + "\n")
        with (out / "guardband.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, self.ROW_FIELDS)
            writer.writeheader()
            writer.writerows(self.rows())
        for die in sorted({p.die for p in self.points}):
            for trace in self.config.traces:
                mine = [p for p in self.points if p.die == die and p.trace == trace]
                traces = {(p.strategy if p.strategy != "governor" else f"governor {p.policy}"): p.trace_windows
                          for p in mine}
                for p in mine:
                    write_trace(p.trace_windows, out / "traces", f"die{die}-{trace}-{p.strategy}-{p.policy}")
                plot_traces(traces, out / f"clock-die{die}-{trace}.png", f"die {die} (seed {mine[0].seed}), {trace}")


Progress = Callable[[int, int, str], None]


_WORKER: tuple[GuardbandConfig, Workload] | None = None


def _worker_init(config: GuardbandConfig) -> None:
    import torch

    global _WORKER
    torch.set_num_threads(1)  # one core per worker: the pool is the parallelism
    _WORKER = (config, Workload.load(config))


def _worker_point(key: PointKey) -> tuple[PointResult, float, float, str]:
    config, workload = _WORKER
    return run_point(key, config, workload), workload.w8a8_ppl, workload.rated_array_seconds, workload.name


def run_guardband(config: GuardbandConfig, progress: Progress | None = None, jobs: int = 1) -> GuardbandReport:
    """Every point of the grid, in grid order; jobs > 1 runs them on that many processes (same results)."""
    start = time.perf_counter()
    keys = config.points()
    if jobs < 1:
        raise InputError(f"jobs must be at least 1, got {jobs}")
    if jobs == 1:
        workload = Workload.load(config)
        results = []
        for i, key in enumerate(keys):
            results.append(run_point(key, config, workload))
            if progress is not None:
                progress(i + 1, len(keys), f"die {key.die} {key.trace} {key.strategy} {key.policy}")
        name, w8a8, rated = workload.name, workload.w8a8_ppl, workload.rated_array_seconds
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")  # torch in a forked child is not safe
        with ProcessPoolExecutor(jobs, context, initializer=_worker_init, initargs=(config,)) as pool:
            outputs = []
            for i, output in enumerate(pool.map(_worker_point, keys)):
                outputs.append(output)
                if progress is not None:
                    progress(i + 1, len(keys), "")
        results = [o[0] for o in outputs]
        _, w8a8, rated, name = outputs[0]
    for p in results:
        oracle = next(o for o in results if (o.die, o.trace, o.strategy) == (p.die, p.trace, "oracle"))
        p.oracle_x = p.throughput_x / oracle.throughput_x if oracle.throughput_x else math.nan
    return GuardbandReport(config, name, w8a8, rated, results, time.perf_counter() - start)
