"""Per-PE slack tables L = floor((T / scale - t_base) / tau) (shared/reference/timing-model.md).

scale = per-PE variation factor x alpha-power-law voltage factor. The variation factor is
lognormal with median 1, drawn from a generator seeded by `seed`, and truncated above at the
scale where the PE's worst path exactly fills the nominal period. Truncation is the physical
choice: the vendor's static timing sign-off at the slow corner (and speed binning of parts)
guarantees every path of a placed design meets its rated clock, so a PE slower than that is
not a part anyone ships. It is done by inverse-CDF sampling of the truncated normal, not by
clipping, so no artificial cluster of PEs fails at one identical clock. With the shipped
profiles the cut lies 3.3 (kv260) to 5.8 (pynq-z2) sigma out and removes only a thin tail.
The map depends only on (profile, n, seed), never on the clock, so sweeps see the same silicon.

The checksum accumulators (emulated only with EMU_CHECKS, rtl/README.md) get their own factors
from the same generator, drawn after the PEs' so every per-PE value stays what it was without
them. They share the PEs' t_base and tau: a checksum MAC is the same kind of path.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr, ndtri

from ..errors import InputError
from .emulation import L_EXACT
from .profile import DeviceProfile, load_profile

# Checksum accumulators per array column or row, in CK_L_TABLE order: -r_c, -q_r, d_c.
CHECK_GROUPS = 3
# Keeps the slowest PE a hair (1 ppm, far below any real delay resolution) inside the nominal
# period so floating-point rounding can never turn its exact L = 31 into 30 at the rated clock.
_GUARD = 1.0 - 1e-6


def max_variation(profile: DeviceProfile) -> float:
    """Largest per-PE delay factor that still meets the nominal clock at nominal voltage."""
    return profile.nominal_period_ns / profile.worst_path_ns * _GUARD


def _uniforms(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The uniform draws behind the per-PE (n, n) and the checksum (CHECK_GROUPS, n) factors."""
    if n < 1:
        raise InputError(f"array size n must be positive, got {n}")
    rng = np.random.default_rng(seed)
    return rng.random((n, n)), rng.random((CHECK_GROUPS, n))


def _factors(profile: DeviceProfile, u: np.ndarray) -> np.ndarray:
    if profile.variation_sigma == 0:
        return np.ones(u.shape)
    cap = max_variation(profile)
    z = ndtri(u * ndtr(math.log(cap) / profile.variation_sigma))
    return np.minimum(np.exp(profile.variation_sigma * z), cap)


def variation_map(profile: DeviceProfile | str, n: int, seed: int) -> np.ndarray:
    """Per-PE delay factors (n, n), lognormal (median 1) truncated at `max_variation`."""
    return _factors(load_profile(profile), _uniforms(n, seed)[0])


def check_variation_map(profile: DeviceProfile | str, n: int, seed: int) -> np.ndarray:
    """Delay factors of the checksum accumulators (CHECK_GROUPS, n), drawn like the PEs'."""
    return _factors(load_profile(profile), _uniforms(n, seed)[1])


def _clamp(raw: np.ndarray) -> np.ndarray:
    return np.where(raw < 0, -1, np.minimum(raw, L_EXACT)).astype(np.int8)


def _slack(profile: DeviceProfile, clock_mhz: float, factors: np.ndarray, voltage: float | None) -> np.ndarray:
    if not math.isfinite(clock_mhz) or clock_mhz <= 0:
        raise InputError(f"clock must be a positive frequency in MHz, got {clock_mhz}")
    scale = factors * profile.voltage_factor(voltage)
    period = 1000.0 / clock_mhz
    raw = np.floor((period / scale - profile.t_base_ns) / profile.tau_ns_per_bit)
    return _clamp(raw)


def slack_table(
    profile: DeviceProfile | str, clock_mhz: float, n: int, seed: int, voltage: float | None = None
) -> np.ndarray:
    """L per PE as int8 (n, n): 31 means never late, -1 means every bit late."""
    profile = load_profile(profile)
    return _slack(profile, clock_mhz, variation_map(profile, n, seed), voltage)


def check_slack_table(
    profile: DeviceProfile | str, clock_mhz: float, n: int, seed: int, voltage: float | None = None
) -> np.ndarray:
    """L per checksum accumulator as int8 (CHECK_GROUPS, n), rows -r_c, -q_r, d_c (CK_L_TABLE order)."""
    profile = load_profile(profile)
    return _slack(profile, clock_mhz, check_variation_map(profile, n, seed), voltage)


def first_error_clock(profile: DeviceProfile | str, n: int, seed: int, voltage: float | None = None) -> float:
    """Clock in MHz above which at least one PE has L <= 30 (at this clock itself all PEs are exact)."""
    profile = load_profile(profile)
    slowest = float(variation_map(profile, n, seed).max()) * profile.voltage_factor(voltage)
    return 1000.0 / (slowest * profile.worst_path_ns)


def validate_clock(profile: DeviceProfile | str, mhz: float, force: bool = False) -> float:
    """Check a requested array clock against the board's safety ceiling; returns it as float."""
    profile = load_profile(profile)
    if not math.isfinite(mhz) or mhz <= 0:
        raise InputError(f"clock must be a positive frequency in MHz, got {mhz}")
    if mhz > profile.clock_ceiling_mhz and not force:
        raise InputError(
            f"{mhz} MHz exceeds the {profile.name} safety ceiling of {profile.clock_ceiling_mhz} MHz "
            "(pass force=True to override)"
        )
    return float(mhz)
