"""The clock governor: run at the edge the statistics unit reports, not at the guardbanded rated clock.

The governor reads what the hardware reports after each window of GEMMs - tiles whose checksums
deviate (flagged), tiles the policy corrected in place or recomputed, the per-tile magnitude
histogram - never a comparison with the exact result, and moves the operating point one level at
a time on a grid: the clock in steps above the rated clock (knob "clock"), or the supply in steps
below nominal at a fixed clock (knob "voltage"). The ABFT policy decides what to recover; the
governor decides where to run.

The rule acts on the flagged count; the corrections, recomputations and histogram go to the trace
beside it. It was fixed before any experiment was run (GovernorConfig holds the numbers and why):
- over budget (flagged tiles > budget x tiles of the window): back off `backoff_steps` levels and
  bar every level from the failing one up;
- calm (no flagged tile) for `calm_windows` windows in a row: one level up, unless barred or at
  the ceiling;
- otherwise hold. The band between calm and over budget is the hysteresis: a stationary die
  settles where errors are rare and stays there.
A bar lifts once the die has cooled by `retreat_c` below its temperature when the level failed
(the die got faster), or, where no die temperature can be read, after `retry_windows` windows.

Device time is modeled (the die's thermal clock on sim/twin, else the array seconds the cost model
counts), so a seed gives the same trace on every machine. The nominal operating point comes back
on every exit from `governed` (normal end, exception, KeyboardInterrupt).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Protocol

import numpy as np

from .abft.cost import RecoveryCost
from .abft.recovery import ProtectedGemm
from .errors import InputError
from .gemm_call import GemmResult, GemmSite
from .operating_point import OperatingPoint
from .stats import HIST_BINS
from .timing.device_profile import DeviceProfile, load_profile

KNOBS = ("clock", "voltage")


@dataclass(frozen=True)
class GovernorConfig:
    """The governor's parameters, fixed up front (not tuned to an experiment's outcome).

    step: 2 % of the rated clock (2 MHz on pynq-z2) - about four L steps of the slowest PE (one L
    step is tau / period = 0.45 % of delay there), coarse enough to climb the ~30 % guardband in
    ~15 windows, fine enough that the first flagged window lands within a step of the error onset.
    budget: 0.25 % of a window's tiles flagged. A flagged tile recomputed on the host costs ~6x
    its array time (1e9 host MAC/s against 6.4e9 array MAC/s, abft/cost.py), so the budget keeps
    recovery at <= ~1.5 % of run time, below the 2 % one step gains.
    window_gemms 8: about one decoder layer of SmolLM2 (7 linear GEMMs), so the statistics are read
    often enough that the climb from the rated clock to a ~30 % higher edge (15 levels, two windows
    each) takes ~240 GEMMs, about one 128-token forward pass, and a thermal drift compressed into a
    run is followed within a layer or two.
    calm_windows 2, backoff_steps 2: a single calm window can be luck of the operands; backing off
    two levels lands below the level that was already fine before the failing one.
    retreat_c 2 C: a pynq-z2 die is ~0.1 % faster per 2 C (profile temperature coefficient), far
    less than a step; less than that is the XADC's own noise (~+-1 C after averaging).
    """

    knob: str = "clock"
    window_gemms: int = 8
    step: float = 0.02  # clock knob: fraction of the rated clock per level
    voltage_step_v: float = 0.01  # voltage knob: volts per level
    budget: float = 0.0025
    calm_windows: int = 2
    backoff_steps: int = 2
    retreat_c: float = 2.0
    retry_windows: int = 32
    max_clock_mhz: float | None = None  # clock knob: a ceiling below the profile's [profile ceiling]
    min_voltage_v: float | None = None  # voltage knob: the lowest supply [profile v_min]
    clock_mhz: float | None = None  # voltage knob: the fixed clock [rated]

    def __post_init__(self) -> None:
        if self.knob not in KNOBS:
            raise InputError(f"the governor's knob is one of {', '.join(KNOBS)}, got {self.knob!r}")
        if self.window_gemms < 1 or self.calm_windows < 1 or self.backoff_steps < 1 or self.retry_windows < 1:
            raise InputError("window_gemms, calm_windows, backoff_steps and retry_windows must be at least 1")
        for name in ("step", "voltage_step_v", "budget", "retreat_c"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"governor {name} must be a positive number, got {value!r}")


@dataclass
class WindowStats:
    """What the statistics unit and the recovery counters report over one window: all the governor reads."""

    gemms: int = 0
    tiles: int = 0
    flagged: int = 0  # tiles whose checksums deviate (statistics unit any_err)
    recover_flags: int = 0  # tiles the statistics unit asked to recover under the policy's thresholds
    corrected: int = 0  # tiles fixed in place from the deviations
    recomputed: int = 0  # tiles recomputed exactly
    hist: np.ndarray = field(default_factory=lambda: np.zeros(HIST_BINS, np.int64))

    def add(self, result: GemmResult, cost: RecoveryCost) -> None:
        stats = result.stats
        self.gemms += 1
        self.tiles += cost.tiles
        self.corrected += cost.tiles_corrected
        self.recomputed += cost.tiles_recomputed
        if stats is not None:
            self.flagged += stats.tiles_err
            self.recover_flags += stats.tiles_recover
            self.hist += stats.hist

    @property
    def flagged_fraction(self) -> float:
        return self.flagged / self.tiles if self.tiles else 0.0


@dataclass
class WindowRecord:
    """One row of a governor trace: the window's point, the die, the statistics and the decision after it."""

    window: int
    time_s: float  # modeled device time at the window's end
    clock_mhz: float
    voltage_v: float | None  # the point's supply, or a board's VCCINT as its system monitor read it
    tj_c: float | None  # the die's junction (sim/twin model, or a board's sensor); None if unknown
    ambient_c: float | None
    in_rated_range: bool | None
    gemms: int
    tiles: int
    flagged: int
    recover_flags: int
    corrected: int
    recomputed: int
    hist: list[int]
    decision: str
    # measured against the exact result (the run's oracle), for analysis only: the governor never sees it
    escaped: int | None = None


class Controller(Protocol):
    """Chooses the operating point: at the start, and after each window."""

    def start(self, acc) -> OperatingPoint: ...

    def decide(self, window: WindowStats, tj_c: float | None, acc) -> tuple[OperatingPoint, str]: ...


class Governor:
    """The closed loop of the module docstring, on a grid of levels 0 (rated) .. top (the ceiling)."""

    def __init__(self, config: GovernorConfig, profile: DeviceProfile | str) -> None:
        self.config = config
        self.profile = load_profile(profile)
        p, c = self.profile, config
        if c.knob == "clock":
            ceiling = min(p.clock_ceiling_mhz, c.max_clock_mhz or math.inf)
            if ceiling < p.nominal_clock_mhz:
                raise InputError(f"the governor's ceiling {ceiling} MHz is below the rated {p.nominal_clock_mhz} MHz")
            self.top = math.floor((ceiling - p.nominal_clock_mhz) / (c.step * p.nominal_clock_mhz) + 1e-9)
        else:
            floor = p.v_min if c.min_voltage_v is None else c.min_voltage_v
            if not 0 < floor <= p.v_nominal:
                raise InputError(f"the governor's lowest supply must be in (0, {p.v_nominal}] V, got {floor}")
            self.top = math.floor((p.v_nominal - floor) / c.voltage_step_v + 1e-9)
        self.level = 0
        self.calm = 0
        self.bar: int | None = None  # the lowest barred level
        self.bar_tj: float | None = None
        self.bar_windows = 0

    def point(self, level: int | None = None) -> OperatingPoint:
        level = self.level if level is None else level
        p, c = self.profile, self.config
        if c.knob == "clock":
            return OperatingPoint(round(p.nominal_clock_mhz * (1 + c.step * level), 9))
        return OperatingPoint(c.clock_mhz or p.nominal_clock_mhz, round(p.v_nominal - c.voltage_step_v * level, 9))

    def start(self, acc) -> OperatingPoint:
        return self.point(0)

    def decide(self, window: WindowStats, tj_c: float | None, acc=None) -> tuple[OperatingPoint, str]:
        c = self.config
        self._lift_bar(tj_c)
        if window.flagged_fraction > c.budget:
            self.calm = 0
            if self.level == 0:
                return self.point(), "over budget at rated"
            self.bar, self.bar_tj, self.bar_windows = self.level, tj_c, 0
            self.level = max(0, self.level - c.backoff_steps)
            return self.point(), "back off"
        self.calm = self.calm + 1 if window.flagged == 0 else 0
        if self.calm < c.calm_windows:
            return self.point(), "hold"
        if self.level >= self.top:
            return self.point(), "hold at ceiling"
        if self.bar is not None and self.level + 1 >= self.bar:
            return self.point(), "hold below bar"
        self.level += 1
        self.calm = 0
        return self.point(), "raise"

    def _lift_bar(self, tj_c: float | None) -> None:
        if self.bar is None:
            return
        self.bar_windows += 1
        cooled = tj_c is not None and self.bar_tj is not None and tj_c <= self.bar_tj - self.config.retreat_c
        expired = (tj_c is None or self.bar_tj is None) and self.bar_windows >= self.config.retry_windows
        if cooled or expired:
            self.bar = self.bar_tj = None


class Fixed:
    """A fixed operating point (the rated clock, or a static tuning)."""

    def __init__(self, point: OperatingPoint) -> None:
        self.fixed = point

    def start(self, acc) -> OperatingPoint:
        return self.fixed

    def decide(self, window: WindowStats, tj_c: float | None, acc=None) -> tuple[OperatingPoint, str]:
        return self.fixed, "fixed"


def die_reading(acc) -> tuple[float | None, float | None, bool | None, float | None, float | None]:
    """(junction C, ambient C, in rated range, device time s, measured VCCINT V) from a modeled die, or a
    board's system monitor (its die temperature and VCCINT; board_sensors.py)."""
    die = acc.die
    if die is not None:
        return die.tj_c, die.ambient_c, die.in_rated_range, die.time_s, None
    info = acc.info() if acc.name == "board" else {}
    return info.get("die_temp_c"), None, None, None, info.get("vccint_v")


def device_profile(acc) -> DeviceProfile:
    """The timing profile of an open accelerator: its modeled die's (sim, twin) or its board's."""
    holder = getattr(acc, "clock", acc)  # sim and board keep the array clock apart from the driver
    profile = getattr(holder, "profile", None) or getattr(getattr(holder, "array", None), "profile", None)
    if profile is None:
        raise InputError(f"the {acc.name} backend has no device profile: a governor needs one for its ceiling")
    return profile


class GovernedGemm:
    """A GEMM engine (for the GemmRouter or a GEMM stream): a ProtectedGemm whose point a controller moves.

    After every `window_gemms` GEMMs it reads the window's statistics, asks the controller for the
    next point and applies it; `trace` holds one WindowRecord per window. Use through `governed`,
    which restores the nominal point on every exit.
    """

    def __init__(self, protected: ProtectedGemm, controller: Controller, window_gemms: int,
                 profile: DeviceProfile | str, *, force: bool = False) -> None:
        self.protected = protected
        self.v_nominal = load_profile(profile).v_nominal
        self.acc = protected.backend
        self.controller = controller
        self.window_gemms = window_gemms
        self.force = force
        self.trace: list[WindowRecord] = []
        self._window = WindowStats()
        self._escaped = 0
        self._seconds = 0.0  # modeled time where no die model keeps it
        # the point last asked for: a board applies its clock generator's nearest setting, so compare with this
        self._requested: OperatingPoint | None = None

    @property
    def name(self) -> str:
        return f"governed {self.protected.name}"

    def begin(self) -> None:
        self._apply(self.controller.start(self.acc))

    def _apply(self, point: OperatingPoint) -> None:
        if point != self._requested:
            self.acc.set_operating_point(point, force=self.force)
            self._requested = point
            # the cost model's dynamic energy follows the supply (abft/cost.py)
            self.protected.voltage_ratio = 1.0 if point.voltage_v is None else point.voltage_v / self.v_nominal

    def gemm(self, x: np.ndarray, w: np.ndarray, *, site: GemmSite | None = None) -> GemmResult:
        result = self.protected.gemm(x, w, site=site)
        cost = self.protected.last_cost
        self._window.add(result, cost)
        self._seconds += cost.seconds
        if self.protected.measure:
            self._escaped += cost.elements_wrong_after
        if self._window.gemms >= self.window_gemms:
            self._close_window(decide=True)
        return result

    def finish(self) -> None:
        """Record a last, partial window (no decision follows it)."""
        if self._window.gemms:
            self._close_window(decide=False)

    def _close_window(self, decide: bool) -> None:
        window, point = self._window, self.acc.operating_point
        tj, ambient, rated, time_s, vccint = die_reading(self.acc)
        decision = "end"
        if decide:
            new, decision = self.controller.decide(window, tj, self.acc)
            self._apply(new)
        self.trace.append(WindowRecord(
            len(self.trace), self._seconds if time_s is None else time_s, point.clock_mhz,
            point.voltage_v if point.voltage_v is not None else vccint, tj,
            ambient, rated, window.gemms, window.tiles, window.flagged, window.recover_flags, window.corrected,
            window.recomputed, [int(v) for v in window.hist], decision,
            self._escaped if self.protected.measure else None))
        self._window = WindowStats()
        self._escaped = 0


@contextlib.contextmanager
def governed(protected: ProtectedGemm, controller: Controller, window_gemms: int, profile: DeviceProfile | str,
             *, force: bool = False) -> Iterator[GovernedGemm]:
    """A GovernedGemm started at the controller's first point; the nominal point is back on any exit."""
    acc = protected.backend
    engine = GovernedGemm(protected, controller, window_gemms, profile, force=force)
    try:
        engine.begin()
        yield engine
        engine.finish()
    finally:
        acc.set_operating_point(acc.nominal)
        protected.voltage_ratio = 1.0


def govern(protected: ProtectedGemm, gemms: Iterable[tuple[np.ndarray, np.ndarray, GemmSite | None]],
           config: GovernorConfig, profile: DeviceProfile | str) -> list[WindowRecord]:
    """Run a stream of GEMMs (x, w, site) under the governor; returns its trace."""
    with governed(protected, Governor(config, profile), config.window_gemms, profile) as engine:
        for x, w, site in gemms:
            engine.gemm(x, w, site=site)
    return engine.trace


TRACE_FIELDS = tuple(f.name for f in fields(WindowRecord))


def write_trace(trace: list[WindowRecord], out_dir: Path, stem: str = "governor") -> list[Path]:
    """The trace as <stem>.json and <stem>.csv (the histogram space-separated in one column)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [asdict(r) for r in trace]
    json_path, csv_path = out_dir / f"{stem}.json", out_dir / f"{stem}.csv"
    json_path.write_text(json.dumps(rows, indent=1) + "\n")
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, TRACE_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "hist": " ".join(map(str, row["hist"]))})
    return [json_path, csv_path]


def plot_traces(traces: dict[str, list[WindowRecord]], path: Path, title: str = "") -> Path:
    """Clock (and supply) and junction temperature over device time, one line per labelled trace."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(8, 6))
    for label, trace in traces.items():
        t = [r.time_s for r in trace]
        top.step(t, [r.clock_mhz for r in trace], where="post", label=label)
        if any(r.tj_c is not None for r in trace):
            bottom.plot(t, [math.nan if r.tj_c is None else r.tj_c for r in trace], label=label)
    top.set_ylabel("array clock (MHz)")
    bottom.set_ylabel("junction (C)")
    bottom.set_xlabel("device time (s, modeled)")
    top.legend(fontsize="small")
    if title:
        top.set_title(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
