"""Device timing profiles: one versioned YAML file per board (docs/timing-error-model.md).

A profile holds what the timing model needs to turn a clock and a supply voltage into a per-PE
slack L: the path delay split into a fixed part (t_base) and a per-carry-bit part (tau), the
per-PE variation, and the alpha-power-law voltage parameters. Files are validated strictly so a
typo cannot silently fall back to a default and shift every error clock.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..packaged_yaml import read_yaml, resolve, shipped_names

SCHEMA_VERSION = 1
PROFILE_DIR = Path(__file__).resolve().parent.parent / "device_profiles"
# Longest carry chain of the 32-bit accumulator: a PE meets timing for every input iff its
# scaled t_base + CHAIN_BITS * tau fits in the period.
CHAIN_BITS = 31

_NUMERIC_FIELDS = (
    "nominal_clock_mhz",
    "clock_ceiling_mhz",
    "t_base_ns",
    "tau_ns_per_bit",
    "variation_sigma",
    "v_nominal",
    "v_th",
    "alpha",
)
_FIELDS = ("schema_version", "name", "device", *_NUMERIC_FIELDS)


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    device: str
    nominal_clock_mhz: float
    clock_ceiling_mhz: float
    t_base_ns: float
    tau_ns_per_bit: float
    variation_sigma: float
    v_nominal: float
    v_th: float
    alpha: float
    schema_version: int = SCHEMA_VERSION

    @property
    def worst_path_ns(self) -> float:
        """Delay of the longest carry chain of an unvaried PE at nominal voltage."""
        return self.t_base_ns + CHAIN_BITS * self.tau_ns_per_bit

    @property
    def nominal_period_ns(self) -> float:
        return 1000.0 / self.nominal_clock_mhz

    def voltage_factor(self, voltage: float | None = None) -> float:
        """Alpha-power-law delay scale t_d ~ V / (V - V_th)^alpha, normalised to 1 at V_nominal."""
        if voltage is None:
            return 1.0
        if isinstance(voltage, bool) or not isinstance(voltage, numbers.Real) or not math.isfinite(voltage) \
                or voltage <= self.v_th:
            raise InputError(f"voltage {voltage!r} V must be a number above V_th = {self.v_th} V of {self.name}")

        def delay(v: float) -> float:
            return v / (v - self.v_th) ** self.alpha

        return delay(voltage) / delay(self.v_nominal)


def list_profiles() -> list[str]:
    """Names of the profiles shipped with the package."""
    return shipped_names(PROFILE_DIR)


def _validate(raw: object, source: Path) -> DeviceProfile:
    def bad(why: str) -> InputError:
        return InputError(f"invalid device profile {source}: {why}")

    if not isinstance(raw, dict):
        raise bad("expected a mapping of profile fields")
    missing = [f for f in _FIELDS if f not in raw]
    unknown = sorted(set(raw) - set(_FIELDS))
    if missing:
        raise bad(f"missing field(s) {', '.join(missing)}")
    if unknown:
        raise bad(f"unknown field(s) {', '.join(unknown)}")
    version = raw["schema_version"]
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
    for field in ("nominal_clock_mhz", "t_base_ns", "tau_ns_per_bit", "v_nominal", "alpha"):
        if values[field] <= 0:
            raise bad(f"{field} must be positive")
    if values["variation_sigma"] < 0:
        raise bad("variation_sigma must not be negative")
    if not 0 <= values["v_th"] < values["v_nominal"]:
        raise bad("v_th must lie in [0, v_nominal)")
    if values["clock_ceiling_mhz"] < values["nominal_clock_mhz"]:
        raise bad("clock_ceiling_mhz must not be below nominal_clock_mhz")
    profile = DeviceProfile(name=raw["name"], device=raw["device"], schema_version=version, **values)
    if profile.worst_path_ns > profile.nominal_period_ns:
        raise bad(
            f"worst path t_base + {CHAIN_BITS} tau = {profile.worst_path_ns:.3f} ns exceeds the nominal "
            f"period {profile.nominal_period_ns:.3f} ns: the board would err at its rated clock"
        )
    return profile


def load_profile(name_or_path: str | Path | DeviceProfile) -> DeviceProfile:
    """A shipped profile by name (e.g. "pynq-z2") or a profile YAML file by path."""
    if isinstance(name_or_path, DeviceProfile):
        return name_or_path
    path = resolve(name_or_path, PROFILE_DIR, "device profile")
    return _validate(read_yaml(path, "device profile"), path)
