"""The W8A8 model with its GEMMs on an accelerator backend, under an ABFT policy, at a clock.

What `run` (perplexity, top-1 agreement, generation classes) and `eval` (lm-evaluation-harness
tasks) share: the device and the recovery device opened and every clock tried before minutes of
model loading, the model quantized through one GemmRouter, the layer/component/stage selection
checked against the GEMMs the error-free evaluation really ran, and for each operating point
(clock x error model x policy) the protected backend routed in, the caller's measurement taken,
and what the errors and the recovery cost. The measurement is the caller's: a perplexity, a
generation, a harness evaluation.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from torch import nn

from .abft.abft_profile import AbftProfile, load_abft_profile
from .abft.policies import get_policy
from .abft.recovery import ProtectedGemm, SoftwareFaultAccelerator
from .backends.registry import open_accelerator
from .error_models import RealmModel, SeededFaults
from .errors import InputError
from .governor import Governor, GovernorConfig, WindowRecord, device_profile, governed
from .llm.gemm import GemmLog, GemmRouter, TorchIntMM
from .llm.model import load_config
from .llm.offload import W8A8Config, quantize_model
from .llm.selection import ATTENTION_COMPONENTS, LINEAR_COMPONENTS, Selection

if TYPE_CHECKING:
    from .experiment import RunConfig

# Default overclock relative to nominal: just past the first errors of the default pynq-z2 die at its nominal
# supply (115.6 MHz), so a run without --clock-mhz shows them; deeper into the band on kv260 and zcu104.
DEFAULT_OVERCLOCK = 1.18
# "timing": the backend's own errors (the twin's timing model, the board's real ones); "realm": the
# paper's i.i.d. bit flip, injected at the element error rate the timing model showed at that clock
# (or at a given rate, RunConfig.error_rate), on bit 30 or, as "realm@B", on bit B (the paper also
# swept bits 22, 14 and 10).
ERROR_MODELS = ("timing", "realm", "realm@B")
REALM_BIT = 30

T = TypeVar("T")


def realm_bit(model: str) -> int | None:
    """The bit a realm error model flips ("realm": 30, "realm@14": 14); None for "timing"."""
    if model == "timing":
        return None
    name, sep, bit = model.partition("@")
    if name != "realm" or (sep and not bit.isdigit()) or (sep and not 0 <= int(bit) <= 31):
        raise InputError(f"error models must be timing, realm or realm@B (bit 0-31), got {model!r}")
    return int(bit) if sep else REALM_BIT


def offloaded_components(attention: bool) -> set[str]:
    """Components whose GEMMs a run offloads (W8A8Config keeps lm_head float)."""
    return {*LINEAR_COMPONENTS, *(ATTENTION_COMPONENTS if attention else ())}


@dataclass(frozen=True)
class Point:
    """One operating point: the clock really applied, the error model and the ABFT policy."""

    backend: str
    error_model: str
    clock_mhz: float
    policy: str

    def label(self) -> str:
        return f"{self.backend} {self.clock_mhz:.1f} MHz {self.error_model} {self.policy}"

    def key(self) -> str:
        return f"{self.clock_mhz:.3f}/{self.error_model}/{self.policy}"


@dataclass
class PointCost:
    """What the errors and the recovery did at one point, over every GEMM its measurement ran."""

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
    # a board's die temperature and VCCINT (its system monitor) when the measurement ended; None elsewhere
    die_temp_c: float | None = None
    vccint_v: float | None = None


@dataclass
class Measured(Generic[T]):
    point: Point
    value: T  # what the caller measured
    cost: PointCost
    breakdown: dict  # component (and layer.component) -> summed statistics, and "cost"


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


def totals(summary: dict) -> dict:
    components = {k: v for k, v in summary.items() if not k.startswith("layer")}
    keys = ("tiles", "tiles_err", "tiles_recover")
    return {key: sum(v.get(key, 0) for v in components.values()) for key in keys}


def check_against_model(config: RunConfig) -> AbftProfile | None:
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
        for component in sorted(selection.components & offloaded_components(config.attention)):
            for layer in sorted(selection.layers or range(num_layers)):
                profile.policy_for(mode, layer, component)
    return profile if modes else None


def recovery_device(config: RunConfig, options):
    """A second accelerator, left at its nominal clock, that recomputes flagged tiles (or None: the host)."""
    if config.recover_on == "host":
        return contextlib.nullcontext(None)
    return open_accelerator(config.backend, options)


def matched_rate(done: list[Measured], clock_mhz: float) -> float:
    """The element error rate the timing model showed at a clock on the error-free model's operands.

    Taken from a point whose policy left no wrong element (its GEMMs saw the same operands as the
    error-free model), else from the first. The unprotected point is a poor reference: once its
    activations are corrupted the timing model sees other operands, at 114 MHz on pynq-z2 with a
    tenth of the error rate.
    """
    timing = [m.cost for m in done if m.point.clock_mhz == clock_mhz and m.point.error_model == "timing"]
    exact = [c for c in timing if c.residual_errors == 0]
    return (exact or timing)[0].element_error_rate


def sensor_readings(acc) -> tuple[float | None, float | None]:
    """Die temperature and VCCINT from a board's (or a served board's) info; None for a backend without them."""
    info = acc.info() if acc.name == "board" else {}
    return info.get("die_temp_c"), info.get("vccint_v")


class OffloadedModel:
    """A run's devices, and once `quantize` has run, the model whose GEMMs they compute.

    Open it with `OffloadedModel.open(config)`; then measure the float model, `quantize` it, measure
    the error-free W8A8 model (every GEMM is logged, so the selection can be checked against what
    really ran), `select`, and `measure_points`.
    """

    def __init__(self, config: RunConfig, acc, recovery, profile: AbftProfile | None, clocks: list[float]):
        self.config = config
        self.acc = acc
        self.recovery = recovery
        self.profile = profile
        self.clocks = clocks
        self.router = GemmRouter()
        self.num_layers: int | None = None  # known once quantize has run

    @classmethod
    @contextlib.contextmanager
    def open(cls, config: RunConfig) -> Iterator[OffloadedModel]:
        """The devices of `config`, every clock tried: a missing board or an out-of-range clock fails at once."""
        options = config.backend_options()
        profile = check_against_model(config)
        with open_accelerator(config.backend, options) as acc, recovery_device(config, options) as recovery:
            nominal = acc.clock_mhz
            # software errors at a given rate do not depend on the clock: without timing, nominal alone
            default = [nominal, nominal * DEFAULT_OVERCLOCK] if "timing" in config.error_models else [nominal]
            clocks = config.clocks_mhz or default
            try:
                for clock in clocks:
                    acc.set_clock(clock, force=config.force_clock)
            finally:
                acc.set_clock(nominal)
            yield cls(config, acc, recovery, profile, clocks)

    @property
    def points(self) -> int:
        """How many operating points measure_points visits."""
        return len(self.clocks) * len(self.config.error_models) * len(self.config.policies)

    def quantize(self, model: nn.Module) -> GemmRouter:
        """Make `model` W8A8 in place, every GEMM through this run's router (all selected, error-free)."""
        quantize_model(model, W8A8Config(attention=self.config.attention, act_scale=self.config.act_scale),
                       self.router)
        self.num_layers = model.config.num_hidden_layers
        return self.router

    def select(self) -> None:
        """Route the configured selection to the accelerator; fails if none of the GEMMs logged so far matches."""
        config = self.config
        self.router.selection = Selection.parse(config.layers, config.components, config.stages,
                                                num_layers=self.num_layers)
        sites = {record.site for record in self.router.log.records}
        if not any(self.router.selection.matches(s.layer, s.component, s.stage) for s in sites):
            raise InputError(
                f"--layers {config.layers} --components {config.components} --stages {config.stages} selects none "
                f"of this run's GEMMs (components {', '.join(sorted({s.component for s in sites}))}; "
                f"stages {', '.join(sorted({s.stage for s in sites}))}): no policy or error model would act")

    def measure_points(self, measure: Callable[[Point], T], clocks: list[float] | None = None) -> list[Measured[T]]:
        """`measure` at every clock [the run's], error model and policy, with its GEMMs on the protected backend.

        The router's log and the policy's cost start empty at each point, so the cost covers exactly
        the GEMMs `measure` ran. A clock's points need no other clock's (the realm rows take their rate
        from the timing rows of their own clock), so a campaign measures one clock at a time. The
        nominal clock and the error-free backend come back on every exit.
        """
        config, acc, router = self.config, self.acc, self.router
        done: list[Measured[T]] = []
        nominal = acc.clock_mhz
        try:
            for clock in self.clocks if clocks is None else clocks:
                applied = acc.set_clock(clock, force=config.force_clock)
                for model in config.error_models:
                    bit = realm_bit(model)
                    if bit is not None:
                        rate = config.error_rate if config.error_rate is not None else matched_rate(done, applied)
                    for policy in config.policies:
                        # a fresh generator per policy: every policy faces the same first faults
                        device = acc if model == "timing" else SoftwareFaultAccelerator(
                            SeededFaults(RealmModel(rate, bit), config.seed), acc.array_n, applied)
                        protected = ProtectedGemm(device, policy, self.profile, self.recovery, nominal_mhz=nominal,
                                                  measure=True)
                        router.backend = protected
                        router.log.clear()
                        point = Point(acc.name, model, applied, policy)
                        start = time.perf_counter()
                        value = measure(point)
                        seconds = time.perf_counter() - start
                        done.append(self._measured(point, value, protected, seconds))
        finally:
            acc.set_clock(nominal)
            router.backend = TorchIntMM()
        return done

    def measure_governed(self, measure: Callable[[Point], T]) -> list[Measured[tuple[T, list[WindowRecord]]]]:
        """`measure` once per policy with the governor choosing the operating point window by window.

        Each result carries the governor's trace; the point's clock is the mean clock weighted by the
        tiles each window computed. The nominal point and the error-free backend come back on every exit.
        """
        config, acc, router = self.config, self.acc, self.router
        gov = GovernorConfig(knob=config.governor, window_gemms=config.governor_window)
        device = device_profile(acc)
        done = []
        try:
            for policy in config.policies:
                protected = ProtectedGemm(acc, policy, self.profile, self.recovery, nominal_mhz=acc.nominal.clock_mhz,
                                          measure=True)
                with governed(protected, Governor(gov, device), gov.window_gemms, device) as engine:
                    router.backend = engine
                    router.log.clear()
                    start = time.perf_counter()
                    value = measure(Point(acc.name, "timing", acc.nominal.clock_mhz, f"{policy} governed"))
                    seconds = time.perf_counter() - start
                trace = engine.trace
                tiles = sum(r.tiles for r in trace) or 1
                point = Point(acc.name, "timing", sum(r.clock_mhz * r.tiles for r in trace) / tiles, policy)
                done.append(self._measured(point, (value, trace), protected, seconds))
        finally:
            router.backend = TorchIntMM()
        return done

    def _measured(self, point: Point, value, protected: ProtectedGemm, seconds: float) -> Measured:
        """What the errors and the recovery cost over the GEMMs the router logged since it was cleared."""
        summary = summarize(self.router.log)
        counts, cost = totals(summary), protected.cost
        return Measured(point, value, PointCost(
            len(self.router.log), counts["tiles"], counts["tiles_err"], counts["tiles_recover"],
            cost.element_error_rate, cost.tiles_recomputed, cost.tiles_corrected, cost.elements_cleared,
            cost.elements_wrong_after, cost.recompute_fraction, cost.throughput_vs_nominal, cost.energy_vs_nominal,
            seconds, *sensor_readings(self.acc)), {**summary, "cost": cost.to_dict()})
