"""The main job: perplexity of a W8A8 LLM whose GEMMs run on an accelerator backend, per clock and policy."""

from __future__ import annotations

import contextlib
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import __version__
from .abft.abft_profile import load_abft_profile
from .abft.policies import POLICIES, get_policy
from .abft.recovery import ProtectedGemm, SoftwareFaultAccelerator
from .backends.registry import backend_spec, backends_with, open_accelerator, options_for
from .error_models import RealmModel, SeededFaults
from .errors import InputError
from .governor import KNOBS, Governor, GovernorConfig, WindowRecord, device_profile, governed, plot_traces, write_trace
from .llm.gemm import GemmLog, GemmRouter, TorchIntMM
from .llm.model import DEFAULT_MODEL, load_config, load_model
from .llm.offload import W8A8Config, quantize_model
from .llm.perplexity import perplexity
from .llm.selection import ATTENTION_COMPONENTS, LINEAR_COMPONENTS, Selection, named_components
from .llm.text import DEFAULT_TEXT, check_text_source, load_text, token_windows
from .results import atomic_write_json, atomic_write_text
from .timing.thermal import Environment

# Default overclock relative to nominal: inside the band where the first timing errors appear.
DEFAULT_OVERCLOCK = 1.12
# "timing": the backend's own errors (the twin's timing model, the board's real ones); "realm": the
# paper's i.i.d. bit flip, injected at the element error rate the timing model showed at that clock,
# on bit 30 or, as "realm@B", on bit B (the paper also swept bits 22, 14 and 10).
ERROR_MODELS = ("timing", "realm", "realm@B")
REALM_BIT = 30


def realm_bit(model: str) -> int | None:
    """The bit a realm error model flips ("realm": 30, "realm@14": 14); None for "timing"."""
    if model == "timing":
        return None
    name, sep, bit = model.partition("@")
    if name != "realm" or (sep and not bit.isdigit()) or (sep and not 0 <= int(bit) <= 31):
        raise InputError(f"error models must be timing, realm or realm@B (bit 0-31), got {model!r}")
    return int(bit) if sep else REALM_BIT


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
        Selection.parse(self.layers, self.components, self.stages)  # the syntax; the depth in run_experiment
        never = sorted(named_components(self.components) - _offloaded(self.attention))
        if never:
            raise InputError(f"{', '.join(never)} never run on the accelerator here: Q.K^T and S.V only with "
                             "attention offloaded (--attention), lm_head stays float")
        unknown = set(self.policies) - set(POLICIES)
        if unknown:
            raise InputError(f"unknown ABFT policy {sorted(unknown)}: choose from {', '.join(POLICIES)}")
        if not self.error_models:
            raise InputError("give at least one error model: timing, realm or realm@B")
        bits = [realm_bit(m) for m in self.error_models]
        if any(b is not None for b in bits) and "timing" not in self.error_models:
            raise InputError("the realm error model injects the element error rate the timing model shows "
                             "at each clock, so it needs the timing model in the run too")
        # timing first at every clock: the realm rows take their rate from it
        self.error_models = ["timing", *dict.fromkeys(m for m in self.error_models if m != "timing")]
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
                           board_name=self.board_name, manifest=self.manifest, environment=self.environment)


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
    version: str = __version__

    def table(self) -> str:
        header = (f"{'backend':<10}{'errors':<8}{'clock MHz':>10}  {'ABFT':<12}{'ppl':>10}{'d float':>10}{'d W8A8':>10}"
                  f"{'elem rate':>10}"
                  f"{'tiles err':>10}{'recomp %':>9}{'fixed':>7}{'residual':>9}{'thrpt x':>8}{'energy x':>9}"
                  f"{'seconds':>8}")
        checks = " (checksums overclocked too)" if self.config.emulate_checks else ""
        lines = [f"{self.model}: {self.tokens} tokens on {self.config.backend}{checks}, "
                 f"float ppl {self.float_ppl:.3f}, W8A8 (torch._int_mm) ppl {self.w8a8_ppl:.3f}", header]
        for r in self.rows:
            lines.append(f"{r.backend:<10}{r.error_model:<8}{r.clock_mhz:>10.2f}  {r.policy:<12}{_num(r.ppl):>10}"
                         f"{_num(r.delta_float, True):>10}{_num(r.delta_w8a8, True):>10}"
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
                "governor_traces": {p: [asdict(r) for r in t] for p, t in self.governor_traces.items()}}

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


def summarize(log: GemmLog) -> dict:
    """Statistics summed per component (and per layer) over the GEMMs of one evaluation."""
    per: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for record in log.records:
        stats = record.stats
        if stats is None:
            continue
        for key in (record.site.component, f"layer{record.site.layer}.{record.site.component}"):
            entry = per[key]
            entry["gemms"] += 1
            entry["tiles"] += stats.n_tiles
            entry["tiles_err"] += stats.tiles_err
            entry["tiles_recover"] += stats.tiles_recover
            entry["msd"] += stats.msd
            entry["freq"] += stats.freq
    return {k: dict(v) for k, v in sorted(per.items())}


def run_experiment(config: RunConfig, progress: Progress | None = None) -> RunReport:
    options = config.backend_options()
    profile = _check_against_model(config)
    # open the device and try every clock before minutes of model loading and float evaluation:
    # a missing board or an out-of-range clock must fail at once
    with open_accelerator(config.backend, options) as acc, _recovery_device(config, options) as recovery:
        nominal = acc.clock_mhz
        clocks = config.clocks_mhz or [nominal, nominal * DEFAULT_OVERCLOCK]
        try:
            for clock in clocks:
                acc.set_clock(clock, force=config.force_clock)
        finally:
            acc.set_clock(nominal)
        return _run(config, acc, recovery, profile, clocks, progress)


def _run(config: RunConfig, acc, recovery, profile, clocks: list[float], progress: Progress | None) -> RunReport:
    loaded = load_model(config.model)
    windows = token_windows(loaded.tokenizer, load_text(config.text), config.window, config.tokens)
    evaluations = 2 + len(config.policies) * len(config.error_models) * len(clocks)
    done = 0

    def evaluate(label: str) -> float:
        nonlocal done

        def step(i: int, n: int, _result) -> None:
            if progress is not None:
                progress(done * n + i + 1, evaluations * n, label)

        ppl = perplexity(loaded.model, windows, step).ppl
        done += 1
        return ppl

    float_ppl = evaluate("float")
    router = GemmRouter()
    quantize_model(loaded.model, W8A8Config(attention=config.attention), router)
    w8a8_ppl = evaluate("W8A8 reference")  # with every GEMM selected: its log holds every site of the run
    router.selection = Selection.parse(config.layers, config.components, config.stages,
                                       num_layers=loaded.model.config.num_hidden_layers)
    _require_selected(router, config)
    rows, breakdown = [], {}
    nominal = acc.clock_mhz
    if config.governor is not None:
        traces = _governed_runs(config, acc, recovery, profile, router, evaluate, rows, breakdown,
                                (float_ppl, w8a8_ppl))
        return RunReport(config, loaded.name, int(windows.numel()), float_ppl, w8a8_ppl, rows, breakdown,
                         config.seed, governor_traces=traces)
    try:
        for clock in clocks:
            applied = acc.set_clock(clock, force=config.force_clock)
            for model in config.error_models:
                bit = realm_bit(model)
                if bit is not None:
                    rate = _matched_rate(rows, applied)
                for policy in config.policies:
                    # a fresh generator per policy: every policy faces the same first faults
                    device = acc if model == "timing" else SoftwareFaultAccelerator(
                        SeededFaults(RealmModel(rate, bit), config.seed), acc.array_n, applied)
                    protected = ProtectedGemm(device, policy, profile, recovery, nominal_mhz=nominal,
                                              measure=True)
                    router.backend = protected
                    router.log.clear()
                    start = time.perf_counter()
                    ppl = evaluate(f"{config.backend} {applied:.1f} MHz {model} {policy}")
                    summary = summarize(router.log)
                    totals = _totals(summary)
                    cost = protected.cost
                    rows.append(RunRow(
                        acc.name, model, applied, policy, ppl, ppl - float_ppl, ppl - w8a8_ppl,
                        len(router.log), totals["tiles"], totals["tiles_err"], totals["tiles_recover"],
                        cost.element_error_rate, cost.tiles_recomputed, cost.tiles_corrected,
                        cost.elements_cleared, cost.elements_wrong_after, cost.recompute_fraction,
                        cost.throughput_vs_nominal, cost.energy_vs_nominal, time.perf_counter() - start,
                        *_board_sensors(acc)))
                    breakdown[f"{applied:.3f}/{model}/{policy}"] = {**summary, "cost": cost.to_dict()}
    finally:
        acc.set_clock(nominal)
        router.backend = TorchIntMM()
    confirmation = None
    if config.confirm_on is not None:
        if progress is not None:
            progress(evaluations, evaluations, f"confirming on {config.confirm_on}")
        confirmation = _confirm(config, acc, recovery, profile, router, loaded.model, windows[:1], clocks)
    tokens = int(windows.numel())
    return RunReport(config, loaded.name, tokens, float_ppl, w8a8_ppl, rows, breakdown, config.seed, confirmation)


def _governed_runs(config: RunConfig, acc, recovery, profile, router: GemmRouter, evaluate, rows: list[RunRow],
                   breakdown: dict, baselines: tuple[float, float]) -> dict[str, list[WindowRecord]]:
    """One evaluation per policy with the governor moving the operating point; rows get the tile-weighted clock."""
    gov = GovernorConfig(knob=config.governor, window_gemms=config.governor_window)
    device = device_profile(acc)
    traces = {}
    try:
        for policy in config.policies:
            protected = ProtectedGemm(acc, policy, profile, recovery, nominal_mhz=acc.nominal.clock_mhz, measure=True)
            with governed(protected, Governor(gov, device), gov.window_gemms, device) as engine:
                router.backend = engine
                router.log.clear()
                start = time.perf_counter()
                ppl = evaluate(f"{config.backend} {config.governor} governor {policy}")
            trace = traces[policy] = engine.trace
            tiles = sum(r.tiles for r in trace) or 1
            clock = sum(r.clock_mhz * r.tiles for r in trace) / tiles
            summary = summarize(router.log)
            totals, cost = _totals(summary), protected.cost
            rows.append(RunRow(
                acc.name, "timing", clock, policy, ppl, ppl - baselines[0], ppl - baselines[1], len(router.log),
                totals["tiles"], totals["tiles_err"], totals["tiles_recover"], cost.element_error_rate,
                cost.tiles_recomputed, cost.tiles_corrected, cost.elements_cleared, cost.elements_wrong_after,
                cost.recompute_fraction, cost.throughput_vs_nominal, cost.energy_vs_nominal,
                time.perf_counter() - start, *_board_sensors(acc)))
            breakdown[f"governor/{policy}"] = {**summary, "cost": cost.to_dict()}
    finally:
        router.backend = TorchIntMM()
    return traces


def _board_sensors(acc) -> tuple[float | None, float | None]:
    """Die temperature and VCCINT from a board's (or a served board's) info; None for a backend without them."""
    info = acc.info() if acc.name == "board" else {}
    return info.get("die_temp_c"), info.get("vccint_v")


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
            totals, cost = _totals(summarize(router.log)), protected.cost
        finally:
            device.set_clock(nominal)
            router.backend = TorchIntMM()
        return {"ppl": ppl, "gemms": len(router.log), **totals, "element_error_rate": cost.element_error_rate,
                "tiles_recomputed": cost.tiles_recomputed, "tiles_corrected": cost.tiles_corrected,
                "residual_errors": cost.elements_wrong_after, "clock_mhz": applied}

    with open_accelerator(config.confirm_on, config.backend_options(config.confirm_on)) as other:
        mine, theirs = figures(acc, recovery), figures(other, None)
    applied = mine.pop("clock_mhz")
    theirs.pop("clock_mhz")
    return Confirmation(acc.name, other.name, applied, policy, int(window.numel()), mine, theirs)


def _require_selected(router: GemmRouter, config: RunConfig) -> None:
    """Fail before the first accelerator evaluation if the selection would route no GEMM to it."""
    sites = {record.site for record in router.log.records}
    if not any(router.selection.matches(s.layer, s.component, s.stage) for s in sites):
        raise InputError(
            f"--layers {config.layers} --components {config.components} --stages {config.stages} selects none "
            f"of this run's GEMMs (components {', '.join(sorted({s.component for s in sites}))}; "
            f"stages {', '.join(sorted({s.stage for s in sites}))}): no policy or error model would act")


def _check_against_model(config: RunConfig):
    """What the model's configuration settles before the device opens or the weights load.

    The layer selection against the model's depth, and the ABFT profile (always read, so a bad one
    fails even when no policy needs it) against every GEMM site the run offloads. Returns the
    profile when a policy needs it, else None.
    """
    num_layers = load_config(config.model).num_hidden_layers
    selection = Selection.parse(config.layers, config.components, config.stages, num_layers=num_layers)
    profile = load_abft_profile(config.abft_profile)
    modes = {get_policy(p).hardware_mode for p in config.policies if get_policy(p).needs_site}
    for mode in modes:
        for component in sorted(selection.components & _offloaded(config.attention)):
            for layer in sorted(selection.layers or range(num_layers)):
                profile.policy_for(mode, layer, component)
    return profile if modes else None


def _offloaded(attention: bool) -> set[str]:
    """Components whose GEMMs a run offloads (W8A8Config keeps lm_head float)."""
    return {*LINEAR_COMPONENTS, *(ATTENTION_COMPONENTS if attention else ())}


def _recovery_device(config: RunConfig, options):
    """A second accelerator, left at its nominal clock, that recomputes flagged tiles (or None: the host)."""
    if config.recover_on == "host":
        return contextlib.nullcontext(None)
    return open_accelerator(config.backend, options)


def _matched_rate(rows: list[RunRow], clock_mhz: float) -> float:
    """The element error rate the timing model showed at a clock on the error-free model's operands.

    Taken from a run whose policy left no wrong element (its GEMMs saw the same operands as the
    error-free model), else from the first run. The unprotected run is a poor reference: once its
    activations are corrupted the timing model sees other operands, at 114 MHz on pynq-z2 with a
    tenth of the error rate.
    """
    timing = [r for r in rows if r.clock_mhz == clock_mhz and r.error_model == "timing"]
    exact = [r for r in timing if r.residual_errors == 0]
    return (exact or timing)[0].element_error_rate


def _totals(summary: dict) -> dict:
    components = {k: v for k, v in summary.items() if not k.startswith("layer")}
    keys = ("tiles", "tiles_err", "tiles_recover")
    return {key: sum(v.get(key, 0) for v in components.values()) for key in keys}
