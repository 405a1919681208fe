"""The main job: perplexity of a W8A8 LLM whose GEMMs run on an accelerator backend, per clock and policy.

Next to perplexity, from the same forward, the top-1 agreement with the error-free W8A8 model; with
`generate`, the outcome classes of greedy continuations (llm/generation.py). The devices, the
quantized model and the loop over operating points are offloaded.py's, shared with `eval`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import __version__
from .abft.policies import POLICIES
from .abft.recovery import ProtectedGemm
from .backends.registry import backend_spec, backends_with, open_accelerator, options_for
from .errors import InputError
from .governor import KNOBS, GovernorConfig, WindowRecord, plot_traces, write_trace
from .llm.agreement import top1_agreement
from .llm.gemm import GemmRouter, TorchIntMM
from .llm.generation import DEGENERATE_RULE, Generation, check_prompts_file, counts, file_prompts, text_prompts
from .llm.model import DEFAULT_MODEL, LoadedModel, load_model
from .llm.offload import ACT_SCALES
from .llm.perplexity import PerplexityResult, perplexity
from .llm.selection import Selection, named_components
from .llm.text import DEFAULT_TEXT, check_text_source, load_text, token_windows
from .offloaded import OffloadedModel, offloaded_components, realm_bit, summarize, totals
from .results import atomic_write_json, atomic_write_text
from .timing.thermal import Environment

# The figures a confirmation compares: what the errors and the recovery did, not the time they took.
CONFIRMED_FIELDS = ("ppl", "gemms", "tiles", "tiles_err", "tiles_recover", "element_error_rate",
                    "tiles_recomputed", "tiles_corrected", "residual_errors")


@dataclass
class RunConfig:
    backend: str = "sim"
    model: str = DEFAULT_MODEL
    text: str = DEFAULT_TEXT
    tokens: int | None = None  # None: the backend's default_tokens (backends/registry.py)
    window: int | None = None  # None: the backend's default_window
    clocks_mhz: list[float] | None = None  # None: nominal and DEFAULT_OVERCLOCK x nominal
    policies: list[str] = field(default_factory=lambda: ["none"])
    error_models: list[str] = field(default_factory=lambda: ["timing"])
    abft_profile: str = "smollm2-135m"
    recover_on: str | None = None  # "accelerator" (twin, reference) or "host"; None: the first that fits
    seed: int = 0
    layers: str = "all"
    components: str = "linear"
    stages: str = "all"
    attention: bool = False
    profile: str = "pynq-z2"
    array_n: int = 8
    board_address: str | None = None  # "HOST:PORT" of `realm-hil serve`, or "pynq://HOST[:PORT]" (PYNQ.remote)
    board_name: str | None = None  # board: the overlay to load [the board's own]
    manifest: str | None = None  # board: the bitstream manifest [bitstreams/manifest.json]
    force_clock: bool = False
    emulate_checks: bool = False  # sim, twin: the checksum accumulators are overclocked too
    # a second backend that reruns one point (the highest clock, the first protecting policy, timing
    # errors) on the first window: with the same seed and profile it must report identical figures
    confirm_on: str | None = None
    # a closed loop instead of fixed clocks: "clock" or "voltage" (governor.py), one governed run per policy
    governor: str | None = None
    governor_window: int = GovernorConfig.window_gemms
    environment: Environment | None = None  # sim, twin: the die's ambient (timing/thermal.py) [sign-off corner]
    supply_v: float | None = None  # sim, twin, reference: the array's supply voltage [the profile's nominal]
    # the realm models' element error rate at every clock; None: the rate the timing model showed at that clock
    error_rate: float | None = None
    act_scale: str = "dynamic"  # or "static-clamped", ReaLM's injector (llm/offload.py)
    generate: int = 0  # new tokens per prompt of the generation outcome classes (0: no generation)
    prompts: str | None = None  # a file of prompts, one per line; None: cut from the text (llm/generation.py)

    def __post_init__(self) -> None:
        can = backend_spec(self.backend).capabilities
        self.tokens = self.tokens or can.default_tokens
        self.window = self.window or min(can.default_window, self.tokens)
        if self.tokens < 2 or self.window < 2:
            raise InputError("tokens and window must be at least 2")
        if self.window > self.tokens:
            raise InputError(f"a {self.window}-token window does not fit in {self.tokens} tokens")
        # non-finite clocks pass `> 0` checks of some backends (the reference's accepts inf)
        bad = [c for c in self.clocks_mhz or () if not (math.isfinite(c) and c > 0)]
        if bad:
            raise InputError(f"clocks must be positive finite frequencies in MHz, got {bad[0]}")
        if self.array_n < 1 or self.seed < 0:
            raise InputError(f"array_n must be at least 1 and seed at least 0, got {self.array_n} and {self.seed}")
        check_text_source(self.text)
        if self.generate < 0:
            raise InputError(f"generate takes a number of new tokens, at least 0, got {self.generate}")
        if self.prompts is not None:
            if not self.generate:
                raise InputError("prompts are for the generation outcome classes: give the new tokens to generate too")
            check_prompts_file(self.prompts)
        Selection.parse(self.layers, self.components, self.stages)  # the syntax; the depth in run_experiment
        never = sorted(named_components(self.components) - offloaded_components(self.attention))
        if never:
            raise InputError(f"{', '.join(never)} never run on the accelerator here: Q.K^T and S.V only with "
                             "attention offloaded (--attention), lm_head stays float")
        unknown = set(self.policies) - set(POLICIES)
        if unknown:
            raise InputError(f"unknown ABFT policy {sorted(unknown)}: choose from {', '.join(POLICIES)}")
        if not self.error_models:
            raise InputError("give at least one error model: timing, realm or realm@B")
        bits = [realm_bit(m) for m in self.error_models]
        if self.error_rate is not None:
            if not 0 <= self.error_rate <= 1:  # nan fails both comparisons, inf the second
                raise InputError(f"the error rate is a probability in [0, 1], got {self.error_rate}")
            if all(b is None for b in bits):
                raise InputError("an error rate sets the rate of the realm error models: add realm or realm@B "
                                 "to the error models")
        elif any(b is not None for b in bits) and "timing" not in self.error_models:
            raise InputError("the realm error model injects the element error rate the timing model shows "
                             "at each clock, so it needs the timing model in the run too (or give an error rate)")
        # timing first at every clock: without a given rate the realm rows take theirs from it
        timing = ["timing"] if "timing" in self.error_models else []
        self.error_models = [*timing, *dict.fromkeys(m for m in self.error_models if m != "timing")]
        if self.act_scale not in ACT_SCALES:
            raise InputError(f"the activation scale must be {' or '.join(ACT_SCALES)}, got {self.act_scale!r}")
        self.backend_options()  # what the backend cannot use fails here, before the device opens
        if self.governor is not None:
            if self.governor not in KNOBS:
                raise InputError(f"the governor moves one of {', '.join(KNOBS)}, got {self.governor!r}")
            if self.clocks_mhz:
                raise InputError("the governor chooses the clock: give --governor or --clock-mhz, not both")
            if self.error_models != ["timing"]:
                raise InputError("the governor runs on the backend's own timing errors (--error-model timing)")
            if self.confirm_on is not None:
                raise InputError("--confirm reruns a fixed clock; it does not combine with --governor")
            if self.governor == "voltage" and not can.voltage:
                raise InputError(f"the supply of the {self.backend} backend cannot be set from here: govern the "
                                 f"clock, or the supply on {' or '.join(backends_with('voltage'))}")
            GovernorConfig(knob=self.governor, window_gemms=self.governor_window)
        if self.confirm_on is not None:
            dies = backends_with("models_die")
            if self.confirm_on == self.backend or self.confirm_on not in dies:
                raise InputError(f"--confirm takes a modeled backend other than {self.backend} "
                                 f"({', '.join(dies)}), got {self.confirm_on!r}")
            if not can.models_die:
                raise InputError(f"--confirm compares two models of the same silicon; {self.backend} is not one "
                                 f"(use {' or '.join(dies)})")
        if self.recover_on is None:
            self.recover_on = "accelerator" if can.recovery else "host"
        if self.recover_on not in ("accelerator", "host"):
            raise InputError(f"recover_on must be 'accelerator' or 'host', got {self.recover_on!r}")
        if self.recover_on == "accelerator" and not can.recovery:
            raise InputError(f"a second {self.backend} accelerator for recovery is not available; "
                             f"recover on the host, or use {' or '.join(backends_with('recovery'))}")

    def backend_options(self, backend: str | None = None):
        """The options of this run's backend (or of `backend`, the confirming one) from the run's values."""
        return options_for(backend or self.backend, array_n=self.array_n, profile=self.profile, seed=self.seed,
                           emulate_checks=self.emulate_checks, address=self.board_address,
                           board_name=self.board_name, manifest=self.manifest, environment=self.environment,
                           voltage_v=self.supply_v)


@dataclass
class RunRow:
    backend: str
    error_model: str
    clock_mhz: float
    policy: str
    ppl: float
    delta_float: float
    delta_w8a8: float
    gemms: int
    tiles: int
    tiles_err: int
    tiles_recover: int
    element_error_rate: float  # output elements wrong before recovery
    tiles_recomputed: int
    tiles_corrected: int
    elements_cleared: int
    residual_errors: int  # output elements still wrong after recovery
    recompute_fraction: float
    throughput: float  # useful MAC/s including recovery, relative to nominal without protection
    energy: float  # modeled energy per useful MAC relative to nominal (abft/cost.py)
    seconds: float
    # a board's die temperature and VCCINT (its system monitor) when the row's evaluation ended; None elsewhere
    die_temp_c: float | None = None
    vccint_v: float | None = None
    top1: float = math.nan  # positions whose argmax next token is the error-free W8A8 one (llm/agreement.py)
    generation: dict[str, int] | None = None  # continuations per outcome class (llm/generation.py), with --generate


@dataclass
class Confirmation:
    """One point run on the main backend and on a second model of the same die, on the first window."""

    backend: str
    other: str
    clock_mhz: float
    policy: str
    tokens: int
    figures: dict[str, float]  # CONFIRMED_FIELDS on the main backend
    other_figures: dict[str, float]  # the same on the confirming backend

    @property
    def identical(self) -> bool:
        return self.figures == self.other_figures

    def summary(self) -> str:
        head = (f"{self.other} confirms {self.backend} at {self.clock_mhz:.2f} MHz, {self.policy}, on "
                f"{self.tokens} tokens")
        if self.identical:
            f = self.figures
            return (f"{head}: identical (ppl {_num(f['ppl'])}, {f['tiles_err']} of {f['tiles']} tiles in error, "
                    f"{f['tiles_recomputed']} recomputed, {f['tiles_corrected']} corrected, "
                    f"{f['residual_errors']} wrong after recovery)")
        differ = [f"{k} {self.figures[k]} vs {self.other_figures[k]}" for k in CONFIRMED_FIELDS
                  if self.figures[k] != self.other_figures[k]]
        return f"{head}: MISMATCH: {'; '.join(differ)}"


@dataclass
class RunReport:
    config: RunConfig
    model: str
    tokens: int
    float_ppl: float
    w8a8_ppl: float
    rows: list[RunRow]
    breakdown: dict  # "clock/policy" -> component -> summed statistics
    seed: int
    confirmation: Confirmation | None = None
    governor_traces: dict[str, list[WindowRecord]] = field(default_factory=dict)  # policy -> windows
    # with --generate: the prompts, the rule, the error-free continuations and each point's (llm/generation.py)
    generation: dict | None = None
    version: str = __version__

    def table(self) -> str:
        gen = self.generation is not None
        header = (f"{'backend':<10}{'errors':<8}{'clock MHz':>10}  {'ABFT':<12}{'ppl':>10}{'d float':>10}{'d W8A8':>10}"
                  f"{'top1 %':>8}" + (f"{'ident':>6}{'fluent':>7}{'degen':>6}{'fail':>5}" if gen else "") +
                  f"{'elem rate':>10}"
                  f"{'tiles err':>10}{'recomp %':>9}{'fixed':>7}{'residual':>9}{'thrpt x':>8}{'energy x':>9}"
                  f"{'seconds':>8}")
        checks = " (checksums overclocked too)" if self.config.emulate_checks else ""
        scale = " static-clamped" if self.config.act_scale == "static-clamped" else ""
        rate = "" if self.config.error_rate is None else f", realm at rate {self.config.error_rate:g}"
        lines = [f"{self.model}: {self.tokens} tokens on {self.config.backend}{checks}, "
                 f"float ppl {self.float_ppl:.3f}, W8A8{scale} (torch._int_mm) ppl {self.w8a8_ppl:.3f}{rate}"]
        if gen:
            g = self.generation
            lines.append(f"generation: {len(g['reference'])} prompts x {g['new_tokens']} greedy tokens against the "
                         f"error-free W8A8 continuations ({g['reference_degenerate']} of them degenerate by the same "
                         f"rule); degenerate: {g['rule']}")
        lines.append(header)
        for r in self.rows:
            classes = r.generation or {}
            lines.append(f"{r.backend:<10}{r.error_model:<8}{r.clock_mhz:>10.2f}  {r.policy:<12}{_num(r.ppl):>10}"
                         f"{_num(r.delta_float, True):>10}{_num(r.delta_w8a8, True):>10}{100 * r.top1:>8.2f}"
                         + (f"{classes.get('identical', 0):>6}{classes.get('fluent', 0):>7}"
                            f"{classes.get('degenerate', 0):>6}{classes.get('failed', 0):>5}" if gen else "") +
                         f"{r.element_error_rate:>10.2e}{r.tiles_err:>10}"
                         f"{100 * r.recompute_fraction:>9.3f}{r.tiles_corrected:>7}{r.residual_errors:>9}"
                         f"{r.throughput:>8.3f}{r.energy:>9.3f}{r.seconds:>8.1f}")
        if self.confirmation is not None:
            lines.append(self.confirmation.summary())
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"version": self.version, "config": asdict(self.config), "model": self.model, "tokens": self.tokens,
                "seed": self.seed, "float_ppl": self.float_ppl, "w8a8_ppl": self.w8a8_ppl,
                "rows": [asdict(r) for r in self.rows], "breakdown": self.breakdown,
                "confirmation": None if self.confirmation is None else asdict(self.confirmation),
                "governor_traces": {p: [asdict(r) for r in t] for p, t in self.governor_traces.items()},
                "generation": self.generation}

    def save(self, out_dir: Path) -> None:
        atomic_write_json(Path(out_dir) / "results.json", self.to_dict())
        atomic_write_text(Path(out_dir) / "table.txt", self.table() + "\n")
        for policy, trace in self.governor_traces.items():
            write_trace(trace, out_dir, f"governor-{policy}")
        if self.governor_traces:
            plot_traces(self.governor_traces, Path(out_dir) / "governor.png",
                        f"{self.config.governor} governor on {self.config.backend}")


def _num(value: float, signed: bool = False) -> str:
    """Perplexities span 1e1..1e9 under errors: fixed point while it fits, else scientific."""
    sign = "+" if signed else ""
    return f"{value:{sign}.3f}" if abs(value) < 1e4 else f"{value:{sign}.2e}"


# (done, total, label) after each evaluated window
Progress = Callable[[int, int, str], None]


def run_experiment(config: RunConfig, progress: Progress | None = None) -> RunReport:
    # the devices open and every clock is tried before minutes of model loading and float evaluation
    with OffloadedModel.open(config) as offloaded:
        return _run(config, offloaded, progress)


def _run(config: RunConfig, offloaded: OffloadedModel, progress: Progress | None) -> RunReport:
    prepared = prepare(config, offloaded, progress)
    if config.governor is not None:
        rows, breakdown, traces = _governed_runs(offloaded, prepared.evaluate, prepared.float_ppl, prepared.w8a8)
        return RunReport(config, prepared.loaded.name, prepared.tokens, prepared.float_ppl, prepared.w8a8.ppl, rows,
                         breakdown, config.seed, governor_traces=traces)
    measured = prepared.measure()
    confirmation = None
    if config.confirm_on is not None:
        if progress is not None:
            progress(prepared.evaluations, prepared.evaluations, f"confirming on {config.confirm_on}")
        confirmation = _confirm(config, offloaded.acc, offloaded.recovery, offloaded.profile, offloaded.router,
                                prepared.loaded.model, prepared.windows[:1], offloaded.clocks)
    return prepared.report(measured, confirmation)


@dataclass
class Prepared:
    """A run up to its operating points: the model loaded and quantized, the float and error-free W8A8
    evaluations done. `measure` runs operating points, `report` turns their results into the RunReport."""

    config: RunConfig
    offloaded: OffloadedModel
    loaded: LoadedModel
    windows: object
    generation: Generation | None
    evaluate: Callable[[str], PerplexityResult]
    evaluations: int  # what the progress counts: the two reference evaluations and every operating point
    float_ppl: float
    w8a8: PerplexityResult

    @property
    def tokens(self) -> int:
        return int(self.windows.numel())

    def measure(self, clocks: list[float] | None = None) -> PointRows:
        """The rows (and their breakdown and continuations) of every operating point at `clocks` [the run's]."""
        generation, loaded = self.generation, self.loaded

        def measure(point):
            result = self.evaluate(point.label())
            return result, None if generation is None else generation.generate(loaded.model)

        rows, breakdown, continuations = [], {}, {}
        for m in self.offloaded.measure_points(measure, clocks):
            result, generated = m.value
            classes = None
            if generation is not None:
                # judged by the error-free model (the router is back on it), outside every point's cost
                classes = generation.classify(loaded.model, generated)
                continuations[m.point.key()] = [{"class": c, "text": loaded.tokenizer.decode(g.tokens)}
                                                for c, g in zip(classes, generated, strict=True)]
            p = m.point
            rows.append(RunRow(p.backend, p.error_model, p.clock_mhz, p.policy, result.ppl, result.ppl - self.float_ppl,
                               result.ppl - self.w8a8.ppl, **asdict(m.cost), top1=top1_agreement(self.w8a8, result),
                               generation=None if classes is None else counts(classes)))
            breakdown[p.key()] = m.breakdown
        return PointRows(rows, breakdown, continuations)

    def generation_summary(self) -> dict | None:
        """With --generate: the prompts, the rule and the error-free continuations (no point's)."""
        generation, tokenizer = self.generation, self.loaded.tokenizer
        if generation is None:
            return None
        return {"prompts": [tokenizer.decode(p) for p in generation.prompts],
                "new_tokens": generation.new_tokens, "rule": DEGENERATE_RULE,
                "reference": [tokenizer.decode(r.tokens) for r in generation.reference],
                "reference_degenerate": generation.reference_degenerate(self.loaded.model)}

    def report(self, measured: PointRows, confirmation: Confirmation | None = None) -> RunReport:
        summary = self.generation_summary()
        if summary is not None:
            summary["continuations"] = measured.continuations
        return RunReport(self.config, self.loaded.name, self.tokens, self.float_ppl, self.w8a8.ppl, measured.rows,
                         measured.breakdown, self.config.seed, confirmation, generation=summary)


@dataclass
class PointRows:
    """Operating points' results: RunRows in the order measured, breakdown and continuations by point key."""

    rows: list[RunRow]
    breakdown: dict
    continuations: dict


def prepare(config: RunConfig, offloaded: OffloadedModel, progress: Progress | None = None) -> Prepared:
    """Load the model, evaluate it float, quantize it, evaluate it error-free W8A8 and select the offloaded GEMMs."""
    loaded = load_model(config.model)
    windows = token_windows(loaded.tokenizer, load_text(config.text), config.window, config.tokens)
    generation = _generation(config, loaded) if config.generate else None
    evaluations = 2 + offloaded.points
    done = 0

    def evaluate(label: str) -> PerplexityResult:
        nonlocal done

        def step(i: int, n: int, _result) -> None:
            if progress is not None:
                progress(done * n + i + 1, evaluations * n, label)

        result = perplexity(loaded.model, windows, step)
        done += 1
        return result

    float_ppl = evaluate("float").ppl
    offloaded.quantize(loaded.model)
    # with every GEMM selected, the logs of these hold every site of the run, decode ones from generation
    w8a8 = evaluate("W8A8 reference")
    if generation is not None:
        generation.reference = generation.generate(loaded.model)
    offloaded.select()
    return Prepared(config, offloaded, loaded, windows, generation, evaluate, evaluations, float_ppl, w8a8)


def _governed_runs(offloaded: OffloadedModel, evaluate: Callable[[str], PerplexityResult], float_ppl: float,
                   w8a8: PerplexityResult):
    """One evaluation per policy with the governor moving the operating point; rows get the tile-weighted clock."""
    rows, breakdown, traces = [], {}, {}
    for m in offloaded.measure_governed(lambda point: evaluate(point.label())):
        result, trace = m.value
        traces[m.point.policy] = trace
        rows.append(RunRow(m.point.backend, m.point.error_model, m.point.clock_mhz, m.point.policy, result.ppl,
                           result.ppl - float_ppl, result.ppl - w8a8.ppl, **asdict(m.cost),
                           top1=top1_agreement(w8a8, result)))
        breakdown[f"governor/{m.point.policy}"] = m.breakdown
    return rows, breakdown, traces


def _generation(config: RunConfig, loaded: LoadedModel) -> Generation:
    """The prompts of the generation outcome classes: the file's, else cut from the run's text."""
    if config.prompts is not None:
        prompts = file_prompts(loaded.tokenizer, config.prompts)
    else:
        prompts = text_prompts(loaded.tokenizer, load_text(config.text))
    return Generation(prompts, config.generate)


def _confirm(config: RunConfig, acc, recovery, profile, router: GemmRouter, model, window, clocks) -> Confirmation:
    """The highest clock with the first protecting policy, on `window`, on acc and on config.confirm_on."""
    clock = max(clocks)
    policy = next((p for p in config.policies if p != "none"), config.policies[0])

    def figures(device, recovery_device) -> dict:
        nominal = device.clock_mhz
        applied = device.set_clock(clock, force=config.force_clock)
        try:
            protected = ProtectedGemm(device, policy, profile, recovery_device, nominal_mhz=nominal, measure=True)
            router.backend = protected
            router.log.clear()
            ppl = perplexity(model, window).ppl
            counted, cost = totals(summarize(router.log)), protected.cost
        finally:
            device.set_clock(nominal)
            router.backend = TorchIntMM()
        return {"ppl": ppl, "gemms": len(router.log), **counted, "element_error_rate": cost.element_error_rate,
                "tiles_recomputed": cost.tiles_recomputed, "tiles_corrected": cost.tiles_corrected,
                "residual_errors": cost.elements_wrong_after, "clock_mhz": applied}

    with open_accelerator(config.confirm_on, config.backend_options(config.confirm_on)) as other:
        mine, theirs = figures(acc, recovery), figures(other, None)
    applied = mine.pop("clock_mhz")
    theirs.pop("clock_mhz")
    return Confirmation(acc.name, other.name, applied, policy, int(window.numel()), mine, theirs)
