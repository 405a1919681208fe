"""Device timing profiles: one versioned YAML file per board (docs/timing-error-model.md).

A profile holds what the timing model needs to turn a die, a clock, a supply voltage and a junction
temperature into a per-PE slack L: the sign-off path delay split into a fixed part (t_base) and a
per-carry-bit part (tau), both at the slow corner the rated clock was closed at (the slowest die,
minimum VCCINT, the binding end of the rated junction range); the within-die variation; the
die-to-die process spread; the temperature coefficient of delay; the alpha-power-law voltage
parameters; the rated ranges; and the thermal path and power that set the junction temperature.
Files are validated strictly so a typo cannot silently fall back to a default and shift every
error clock.

Schema 2 (the PVT model) refuses schema-1 files with a message naming the fields to add: a
default for a rated range or a thermal resistance would move every result without anyone having
chosen it.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..packaged_yaml import read_yaml, resolve, shipped_names

SCHEMA_VERSION = 2
PROFILE_DIR = Path(__file__).resolve().parent.parent / "device_profiles"
# Longest carry chain of the 32-bit accumulator: a PE meets timing for every input iff its
# scaled t_base + CHAIN_BITS * tau fits in the period.
CHAIN_BITS = 31

_V1_NUMERIC = (
    "nominal_clock_mhz",
    "clock_ceiling_mhz",
    "t_base_ns",
    "tau_ns_per_bit",
    "variation_sigma",
    "v_nominal",
    "v_th",
    "alpha",
)
# what schema 2 added; named in the refusal of a schema-1 file
PVT_FIELDS = (
    "v_min",
    "v_max",
    "tj_min_c",
    "tj_max_c",
    "delay_temp_coeff_per_c",
    "process_factor_min",
    "process_factor_max",
    "theta_ja_c_per_w",
    "thermal_tau_s",
    "static_power_w",
    "array_power_w",
)
_NUMERIC_FIELDS = (*_V1_NUMERIC, *PVT_FIELDS)
_FIELDS = ("schema_version", "name", "device", *_NUMERIC_FIELDS)


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    device: str
    nominal_clock_mhz: float
    clock_ceiling_mhz: float
    t_base_ns: float  # sign-off delays: the slow corner (process 1, v_min, signoff_tj_c)
    tau_ns_per_bit: float
    variation_sigma: float  # within-die (per-PE) spread, lognormal
    v_nominal: float
    v_th: float
    alpha: float
    v_min: float  # rated VCCINT range
    v_max: float
    tj_min_c: float  # rated junction temperature range
    tj_max_c: float
    delay_temp_coeff_per_c: float  # k_T: fractional delay change per degree C (negative: temperature inversion)
    process_factor_min: float  # die-to-die delay factor, uniform on [min, max]; 1 is the slow corner
    process_factor_max: float
    theta_ja_c_per_w: float  # effective junction-to-ambient thermal resistance
    thermal_tau_s: float  # first-order thermal time constant
    static_power_w: float  # power that does not depend on the array clock (PL static, PS, clocking)
    array_power_w: float  # array dynamic power at the nominal clock and supply, busy every cycle
    schema_version: int = SCHEMA_VERSION

    @property
    def worst_path_ns(self) -> float:
        """Delay of the longest carry chain of an unvaried PE at the slow corner."""
        return self.t_base_ns + CHAIN_BITS * self.tau_ns_per_bit

    @property
    def nominal_period_ns(self) -> float:
        return 1000.0 / self.nominal_clock_mhz

    @property
    def signoff_tj_c(self) -> float:
        """The binding end of the rated junction range: the hot end when delay rises with temperature,
        the cold end under temperature inversion (either when the coefficient is 0)."""
        return self.tj_min_c if self.delay_temp_coeff_per_c < 0 else self.tj_max_c

    def voltage_factor(self, voltage: float | None = None) -> float:
        """Alpha-power-law delay scale t_d ~ V / (V - V_th)^alpha, 1 at v_min (the sign-off supply).

        None is the nominal supply, where a die is faster than signed off (factor below 1).
        """
        if voltage is None:
            voltage = self.v_nominal
        if isinstance(voltage, bool) or not isinstance(voltage, numbers.Real) or not math.isfinite(voltage) \
                or voltage <= self.v_th:
            raise InputError(f"voltage {voltage!r} V must be a number above V_th = {self.v_th} V of {self.name}")

        def delay(v: float) -> float:
            return v / (v - self.v_th) ** self.alpha

        return delay(voltage) / delay(self.v_min)

    def temperature_factor(self, tj_c: float | None = None) -> float:
        """Delay scale at junction temperature tj_c: 1 + k_T (tj - signoff_tj_c); None is the sign-off temperature.

        At most 1 inside the rated range, whatever the sign of k_T.
        """
        if tj_c is None:
            return 1.0
        if isinstance(tj_c, bool) or not isinstance(tj_c, numbers.Real) or not math.isfinite(tj_c):
            raise InputError(f"junction temperature must be a finite number of degrees C, got {tj_c!r}")
        factor = 1.0 + self.delay_temp_coeff_per_c * (float(tj_c) - self.signoff_tj_c)
        if factor <= 0:
            raise InputError(f"junction temperature {tj_c} C is outside what the linear temperature law of "
                             f"{self.name} can describe")
        return factor

    def in_rated_range(self, tj_c: float, voltage: float | None = None) -> bool:
        """True when the junction temperature and the supply (None: nominal) lie in the rated ranges,
        where sign-off guarantees the rated clock."""
        v = self.v_nominal if voltage is None else voltage
        return self.tj_min_c <= tj_c <= self.tj_max_c and self.v_min <= v <= self.v_max


def list_profiles() -> list[str]:
    """Names of the profiles shipped with the package."""
    return shipped_names(PROFILE_DIR)


def _validate(raw: object, source: Path) -> DeviceProfile:
    def bad(why: str) -> InputError:
        return InputError(f"invalid device profile {source}: {why}")

    if not isinstance(raw, dict):
        raise bad("expected a mapping of profile fields")
    version = raw.get("schema_version")
    if version == 1 and not isinstance(version, bool):
        raise bad("schema_version 1 predates the PVT model (docs/timing-error-model.md): set schema_version: 2, "
                  f"add {', '.join(PVT_FIELDS)} (with their sources), and state t_base_ns and tau_ns_per_bit "
                  "at the slow corner: v_min, the binding junction temperature, the slowest die")
    missing = [f for f in _FIELDS if f not in raw]
    unknown = sorted(set(raw) - set(_FIELDS))
    if missing:
        raise bad(f"missing field(s) {', '.join(missing)}")
    if unknown:
        raise bad(f"unknown field(s) {', '.join(unknown)}")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise bad(f"schema_version {version!r} is not supported (expected {SCHEMA_VERSION})")
    for field in ("name", "device"):
        if not isinstance(raw[field], str) or not raw[field]:
            raise bad(f"{field} must be a non-empty string")
    values = {}
    for field in _NUMERIC_FIELDS:
        value = raw[field]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad(f"{field} must be a finite number, got {value!r}")
        values[field] = float(value)
    for field in ("nominal_clock_mhz", "t_base_ns", "tau_ns_per_bit", "v_nominal", "alpha", "thermal_tau_s"):
        if values[field] <= 0:
            raise bad(f"{field} must be positive")
    for field in ("variation_sigma", "theta_ja_c_per_w", "static_power_w", "array_power_w"):
        if values[field] < 0:
            raise bad(f"{field} must not be negative")
    if not 0 <= values["v_th"] < values["v_min"] <= values["v_nominal"] <= values["v_max"]:
        raise bad("the supplies must satisfy 0 <= v_th < v_min <= v_nominal <= v_max")
    if not values["tj_min_c"] < values["tj_max_c"]:
        raise bad("tj_min_c must be below tj_max_c")
    if not 0 < values["process_factor_min"] <= values["process_factor_max"] <= 1:
        raise bad("the process factors must satisfy 0 < process_factor_min <= process_factor_max <= 1: "
                  "the sign-off delays are those of the slowest die (1)")
    if values["clock_ceiling_mhz"] < values["nominal_clock_mhz"]:
        raise bad("clock_ceiling_mhz must not be below nominal_clock_mhz")
    profile = DeviceProfile(name=raw["name"], device=raw["device"], schema_version=version, **values)
    if profile.worst_path_ns > profile.nominal_period_ns:
        raise bad(
            f"worst path t_base + {CHAIN_BITS} tau = {profile.worst_path_ns:.3f} ns exceeds the nominal "
            f"period {profile.nominal_period_ns:.3f} ns: the board would err at its rated clock"
        )
    far_end = profile.tj_max_c if profile.signoff_tj_c == profile.tj_min_c else profile.tj_min_c
    if 1.0 + profile.delay_temp_coeff_per_c * (far_end - profile.signoff_tj_c) <= 0:
        raise bad("delay_temp_coeff_per_c makes the delay vanish inside the rated junction range")
    return profile


def load_profile(name_or_path: str | Path | DeviceProfile) -> DeviceProfile:
    """A shipped profile by name (e.g. "pynq-z2") or a profile YAML file by path."""
    if isinstance(name_or_path, DeviceProfile):
        return name_or_path
    path = resolve(name_or_path, PROFILE_DIR, "device profile")
    return _validate(read_yaml(path, "device profile"), path)
