"""The `compare` and `calibrate` jobs: a hardware backend, a workload and clocks in; a result out."""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backends.registry import backend_spec, backends_with, open_accelerator, options_for
from ..errors import InputError
from ..results import atomic_write_json, check_output_dir, check_output_file
from ..sweep import SweepPoint, sweep_clock
from ..timing.device_profile import DeviceProfile, load_profile
from ..timing.thermal import Environment, HeldJunction
from ..workload import Gemm, random_workload
from .calibrate import Calibration, DieCalibration, TemperatureSweep, calibrate, calibrate_die, write_profile
from .run import Comparison, compare_models

DEFAULT_CLOCKS = (122.0, 126.0, 132.0)  # onset, rising and heavy part of the pynq-z2 error band
CALIBRATION_CLOCKS = (124.0, 129.0, 135.0, 142.0)
WORKLOADS = ("llm", "random")


@dataclass(frozen=True)
class Measurement:
    """A workload on a hardware backend; sim and twin model its die from (profile, seed)."""

    backend: str = "sim"
    workload: str = "llm"  # GEMMs captured from the model (o and down, layers spread over its depth), or "random"
    gemms: int = 20
    tokens: int = 16  # rows of each LLM GEMM
    seed: int = 0  # per-PE variation of sim/twin, operands of random workloads, draws of the statistical models
    profile: str = "pynq-z2"  # device profile of sim and twin

    def __post_init__(self) -> None:
        if not backend_spec(self.backend).capabilities.clock_control:
            raise InputError(f"the hardware is a backend whose clock changes what it computes "
                             f"({', '.join(backends_with('clock_control'))}), not {self.backend}")
        if self.workload not in WORKLOADS:
            raise InputError(f"the workload is one of {', '.join(WORKLOADS)}, got {self.workload!r}")
        load_profile(self.profile)  # a bad name fails now, not once the workload is captured
        self.hardware_options()
        if self.workload == "llm":
            self._layers()  # the model's depth bounds the GEMMs; checked before anything loads

    def hardware_options(self, environment: Environment | None = None):
        extra = {} if environment is None else {"environment": environment}
        return options_for(self.backend, profile=self.profile, seed=self.seed, **extra)

    def open_hardware(self, environment: Environment | None = None):
        return open_accelerator(self.backend, self.hardware_options(environment))

    def capture(self) -> list[Gemm]:
        if self.workload == "random":
            return random_workload(count=self.gemms, seed=self.seed)
        from ..llm.capture import DEFAULT_COMPONENTS, llm_workload

        return llm_workload(count=self.gemms, tokens=self.tokens, layers=self._layers(), components=DEFAULT_COMPONENTS)

    def _layers(self) -> str:
        from ..llm.capture import spread_layers

        return spread_layers(self.gemms)


@dataclass(frozen=True)
class CompareConfig(Measurement):
    clocks_mhz: tuple[float, ...] = DEFAULT_CLOCKS
    bit: int = 30  # the bit the realm model flips


def run_comparison(config: CompareConfig, progress: Callable[[int, int], None] | None = None) -> Comparison:
    """The realm, per-bit and twin error models against the hardware at each clock."""
    workload = config.capture()
    with config.open_hardware() as hw, open_accelerator("twin", profile=config.profile, seed=config.seed) as twin:
        return compare_models(hw, twin, workload, list(config.clocks_mhz), bit=config.bit, seed=config.seed,
                              progress=progress)


@dataclass(frozen=True)
class CalibrateConfig(Measurement):
    clocks_mhz: tuple[float, ...] = CALIBRATION_CLOCKS  # 3 or more distinct
    start_profile: str | None = None  # the profile the fit starts from [profile]
    name: str | None = None  # of the fitted profile [<start>-cal<date>]
    out_path: Path | None = None  # [runs/calibrate/<name>.yaml]
    # junction temperatures (>= 2) to hold the modeled die at, one sweep each: fit the die's process
    # factor and temperature coefficient instead of t_base, tau and sigma [(): the latter]
    junctions_c: tuple[float, ...] = ()
    # a die calibration gathered over several invocations, for a die whose junction the host cannot hold (a
    # board's follows its environment): each adds one sweep at the temperature read off the die after it, and
    # the fit runs once the directory holds sweeps at 2 or more distinct temperatures
    sweeps_dir: Path | None = None

    def __post_init__(self) -> None:
        if len(set(self.clocks_mhz)) < 3:
            raise InputError(f"calibration needs 3 or more distinct clocks, got {', '.join(map(str, self.clocks_mhz))}")
        if self.sweeps_dir is not None:
            if len(self.junctions_c) > 1:
                raise InputError("with a sweeps directory each run adds one sweep: give at most one junction "
                                 "temperature")
            check_output_dir(self.sweeps_dir)
        elif self.junctions_c and len(set(self.junctions_c)) < 2:
            raise InputError("a die calibration needs 2 or more distinct junction temperatures")
        super().__post_init__()
        if self.junctions_c and not backend_spec(self.backend).capabilities.models_die:
            modeled = ", ".join(backends_with("models_die"))
            raise InputError(f"junction temperatures hold a modeled die's junction ({modeled}); "
                             f"the {self.backend} backend's is not set from the host")
        for tj in self.junctions_c:
            self.hardware_options(HeldJunction(tj))
        self.output()  # an unwritable path fails before the measurement

    def start(self) -> DeviceProfile:
        return load_profile(self.start_profile or self.profile)

    def profile_name(self) -> str:
        return self.name or f"{self.start().name}-cal{datetime.date.today():%Y%m%d}"

    def output(self) -> Path:
        return check_output_file(self.out_path or Path("runs/calibrate") / f"{self.profile_name()}.yaml")


@dataclass
class CalibrationReport:
    calibration: Calibration | DieCalibration
    written: DeviceProfile  # the fitted profile, as loaded back from its file
    path: Path

    def table(self) -> str:
        start, fit = self.calibration.start, self.calibration
        if isinstance(fit, DieCalibration):
            lines = [f"{'':24} {'start':>10} {'fitted':>10}",
                     f"{'process factor':24} {'-':>10} {fit.process_factor:10.5f}",
                     f"{'delay_temp_coeff_per_c':24} {start.delay_temp_coeff_per_c:10.3g} "
                     f"{fit.delay_temp_coeff_per_c:10.3g}"]
            for tj, scale, loss in zip(fit.temperatures_c, fit.scales, fit.losses, strict=True):
                lines.append(f"{f'delay factor at {tj:g} C':24} {'':>10} {scale:10.5f}  (log10-rate MSE {loss:.3g})")
            return "\n".join(lines)
        lines = [f"{'':18} {'start':>10} {'fitted':>10}"]
        for field in ("t_base_ns", "tau_ns_per_bit", "variation_sigma"):
            lines.append(f"{field:18} {getattr(start, field):10.5g} {getattr(self.written, field):10.5g}")
        lines.append(f"{'log10-rate MSE':18} {fit.loss_before:10.4g} {fit.loss_after:10.4g}")
        for mhz, before, after in zip(fit.clocks_mhz, fit.js_before, fit.js_after, strict=True):
            lines.append(f"{f'JS bits {mhz:g} MHz':18} {before:10.4f} {after:10.4f}")
        return "\n".join(lines)


def junction_c(acc) -> float:
    """The junction temperature a sweep ran at, read off the device after it.

    The modeled die's on sim and twin; a board's from its XADC/SYSMON (board_sensors.py) through
    acc.info()["die_temp_c"]. A board's junction is not held from the host: its die calibration gathers
    sweeps at the temperatures its environment gives (CalibrateConfig.sweeps_dir).
    """
    if acc.die is not None:
        return acc.die.tj_c
    reading = acc.info().get("die_temp_c")
    if reading is None:
        raise InputError(f"the {acc.name} backend reports no die temperature")
    return float(reading)


@dataclass
class SweepRecorded:
    """One sweep of a gathered die calibration added to its directory; too few temperatures yet to fit."""

    path: Path
    tj_c: float
    temperatures_c: list[float]

    def table(self) -> str:
        return (f"recorded a sweep at {self.tj_c:.1f} C in {self.path.parent} (temperatures so far: "
                f"{', '.join(f'{t:.1f}' for t in self.temperatures_c)} C); run again at another die temperature "
                "to fit the die")


def _sweep_identity(config: CalibrateConfig, array_n: int) -> dict:
    """What every sweep of one gathered calibration must share: the workload, the clocks, the start profile."""
    return {"workload": config.workload, "gemms": config.gemms, "tokens": config.tokens, "seed": config.seed,
            "profile": config.profile, "start": config.start().name, "clocks_mhz": list(config.clocks_mhz),
            "array_n": array_n}


def _gathered_sweeps(directory: Path, identity: dict) -> list[TemperatureSweep]:
    sweeps = []
    for path in sorted(directory.glob("sweep-*.json")):
        try:
            record = json.loads(path.read_text())
            if record["identity"] != identity:
                raise InputError(f"{path} was measured with other settings ({record['identity']}): use another "
                                 "sweeps directory")
            points = [SweepPoint(**{**p, "bit_errors": np.asarray(p["bit_errors"], dtype=np.int64)})
                      for p in record["points"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path} is not a sweep of a die calibration ({exc})") from None
        sweeps.append(TemperatureSweep(float(record["tj_c"]), points))
    return sweeps


def _gather_sweep(config: CalibrateConfig, workload: list[Gemm]) -> tuple[list[TemperatureSweep], int, Path, float]:
    """Measure one sweep at the die's present (or the one held) junction and add it to the sweeps directory."""
    held = HeldJunction(config.junctions_c[0]) if config.junctions_c else None
    with config.open_hardware(held) as hw:
        points = sweep_clock(hw, workload, list(config.clocks_mhz))
        tj, array_n = junction_c(hw), hw.array_n
    identity = _sweep_identity(config, array_n)
    directory = Path(config.sweeps_dir)
    sweeps = _gathered_sweeps(directory, identity)  # a foreign directory fails before this sweep is added
    path = directory / f"sweep-{len(sweeps):03d}.json"
    atomic_write_json(path, {"identity": identity, "tj_c": tj, "points": [dataclasses.asdict(p) for p in points]})
    return [*sweeps, TemperatureSweep(tj, points)], array_n, path, tj


def run_calibration(config: CalibrateConfig) -> CalibrationReport | SweepRecorded:
    """Measure per-bit error rates on the hardware at each clock, fit the profile (t_base, tau and sigma, or
    with junction temperatures the die's process factor and temperature coefficient), write it."""
    path = config.output()
    workload = config.capture()
    if config.sweeps_dir is not None:
        sweeps, array_n, recorded, tj = _gather_sweep(config, workload)
        temperatures = sorted({s.tj_c for s in sweeps})
        if len(temperatures) < 2:
            return SweepRecorded(recorded, tj, temperatures)
        fit = calibrate_die(config.start(), workload, sweeps, array_n=array_n, seed=config.seed)
        return CalibrationReport(fit, write_profile(fit, path, config.profile_name()), path)
    if config.junctions_c:
        sweeps = []
        for tj in config.junctions_c:
            with config.open_hardware(HeldJunction(tj)) as hw:
                points = sweep_clock(hw, workload, list(config.clocks_mhz))
                sweeps.append(TemperatureSweep(junction_c(hw), points))
                array_n = hw.array_n
        fit = calibrate_die(config.start(), workload, sweeps, array_n=array_n, seed=config.seed)
        return CalibrationReport(fit, write_profile(fit, path, config.profile_name()), path)
    with config.open_hardware() as hw:
        points = sweep_clock(hw, workload, list(config.clocks_mhz))
        array_n = hw.array_n
    fit = calibrate(config.start(), workload, points, array_n=array_n, seed=config.seed)
    return CalibrationReport(fit, write_profile(fit, path, config.profile_name()), path)
