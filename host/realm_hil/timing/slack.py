"""Per-PE slack tables L = floor((T / scale - t_base) / tau) (docs/timing-error-model.md).

scale = per-PE variation x die process factor x temperature factor x voltage factor. t_base and
tau are the sign-off delays of the slow corner (process 1, v_min, the binding junction
temperature), so every factor but the per-PE one is at most 1 inside the rated ranges.

The per-PE variation factor is lognormal with median 1, drawn from a generator seeded by `seed`,
and truncated above at the scale where the PE's worst path exactly fills the nominal period.
Truncation is the physical choice: the vendor's static timing sign-off at the slow corner (and
speed binning of parts) guarantees every path of a placed design meets its rated clock, so a PE
slower than that is not a part anyone ships. It is done by inverse-CDF sampling of the truncated
normal, not by clipping, so no artificial cluster of PEs fails at one identical clock. With the
shipped profiles the cut lies 2.1 (kv260) to 5.8 (pynq-z2) sigma out. The map depends only on
(profile, n, seed), never on the clock, so sweeps see the same silicon.

The checksum accumulators (emulated only with EMU_CHECKS, rtl/README.md) get their own factors
from the same generator, drawn after the PEs' so every per-PE value stays what it was without
them. They share the PEs' t_base and tau: a checksum MAC is the same kind of path.

The die's process factor comes from its own stream of the same seed (a SeedSequence spawn key),
so adding it moved no per-PE or checksum value of any seed.

L is computed in exact rational arithmetic from the floating-point clock, factors, t_base and tau
(the product of the factors too): a float floor lands one off the definition for clocks within
about 1e-14 of a tie, and a twin, an RTL and an oracle that are meant to agree bit for bit should
not disagree on where L steps.
"""

from __future__ import annotations

import functools
import math
import numbers
from fractions import Fraction

import numpy as np

from ..errors import InputError
from .device_profile import DeviceProfile, load_profile
from .emulation import L_EXACT
from .normal import ndtr, ndtri

# Checksum accumulators per array column or row, in CK_L_TABLE order: -r_c, -q_r, d_c.
CHECK_GROUPS = 3
# Keeps the slowest PE a hair (1 ppm, far below any real delay resolution) inside the nominal
# period so floating-point rounding can never turn its exact L = 31 into 30 at the rated clock.
_GUARD = 1.0 - 1e-6


def max_variation(profile: DeviceProfile) -> float:
    """Largest per-PE delay factor that still meets the nominal clock at the slow corner."""
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
    top = ndtr(math.log(cap) / profile.variation_sigma)
    z = np.array([ndtri(v) for v in (u * top).ravel()]).reshape(u.shape)
    return np.minimum(np.exp(profile.variation_sigma * z), cap)


@functools.lru_cache(maxsize=64)
def _maps(profile: DeviceProfile, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    # a die's tables are recomputed at every clock, supply and junction step: its map is drawn once
    maps = tuple(_factors(profile, u) for u in _uniforms(n, seed))
    for m in maps:
        m.setflags(write=False)
    return maps


def variation_map(profile: DeviceProfile | str, n: int, seed: int) -> np.ndarray:
    """Per-PE delay factors (n, n), lognormal (median 1) truncated at `max_variation`."""
    return _maps(load_profile(profile), n, seed)[0].copy()


def check_variation_map(profile: DeviceProfile | str, n: int, seed: int) -> np.ndarray:
    """Delay factors of the checksum accumulators (CHECK_GROUPS, n), drawn like the PEs'."""
    return _maps(load_profile(profile), n, seed)[1].copy()


# The spawn key of the die-level stream of a seed: the per-PE map uses the seed's root stream.
_PROCESS_STREAM = 1


def process_factor(profile: DeviceProfile | str, seed: int) -> float:
    """The die's delay factor relative to the slowest die (1), uniform on the profile's process range."""
    profile = load_profile(profile)
    u = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_PROCESS_STREAM,))).random()
    return profile.process_factor_min + (profile.process_factor_max - profile.process_factor_min) * u


def die_scale(profile: DeviceProfile, voltage: float | None = None, process: float = 1.0,
              tj_c: float | None = None) -> Fraction:
    """The delay factor every PE of a die shares, exactly: process x temperature x voltage factor.

    Defaults are the slowest die (process 1) at the sign-off temperature and the nominal supply.
    """
    if isinstance(process, bool) or not isinstance(process, numbers.Real) or not math.isfinite(process) \
            or process <= 0:
        raise InputError(f"process factor must be a positive number, got {process!r}")
    return (Fraction(float(process)) * Fraction(profile.temperature_factor(tj_c))
            * Fraction(profile.voltage_factor(voltage)))


def _clamp(raw: np.ndarray) -> np.ndarray:
    return np.where(raw < 0, -1, np.minimum(raw, L_EXACT)).astype(np.int8)


def _slack(profile: DeviceProfile, clock_mhz: float, factors: np.ndarray, die: Fraction) -> np.ndarray:
    if not math.isfinite(clock_mhz) or clock_mhz <= 0:
        raise InputError(f"clock must be a positive frequency in MHz, got {clock_mhz}")
    period = Fraction(1000) / Fraction(float(clock_mhz))
    t_base, tau = Fraction(profile.t_base_ns), Fraction(profile.tau_ns_per_bit)
    raw = [math.floor((period / (Fraction(float(v)) * die) - t_base) / tau) for v in np.ravel(factors)]
    return _clamp(np.array(raw, dtype=np.int64).reshape(np.shape(factors)))


def slack_table(profile: DeviceProfile | str, clock_mhz: float, n: int, seed: int, voltage: float | None = None,
                *, process: float = 1.0, tj_c: float | None = None) -> np.ndarray:
    """L per PE as int8 (n, n): 31 means never late, -1 means every bit late.

    The die is seed's per-PE map with process factor `process` [1: the slowest die] at junction
    temperature `tj_c` [the sign-off temperature] and supply `voltage` [nominal].
    """
    profile = load_profile(profile)
    return _slack(profile, clock_mhz, _maps(profile, n, seed)[0], die_scale(profile, voltage, process, tj_c))


def check_slack_table(profile: DeviceProfile | str, clock_mhz: float, n: int, seed: int,
                      voltage: float | None = None, *, process: float = 1.0, tj_c: float | None = None) -> np.ndarray:
    """L per checksum accumulator as int8 (CHECK_GROUPS, n), rows -r_c, -q_r, d_c (CK_L_TABLE order)."""
    profile = load_profile(profile)
    return _slack(profile, clock_mhz, _maps(profile, n, seed)[1],
                  die_scale(profile, voltage, process, tj_c))


def first_error_clock(profile: DeviceProfile | str, n: int, seed: int, voltage: float | None = None,
                      *, process: float = 1.0, tj_c: float | None = None) -> float:
    """The highest clock in MHz (a float) at which every PE still has L = 31; above it at least one errs."""
    profile = load_profile(profile)
    slowest = np.array([_maps(profile, n, seed)[0].max()])
    die = die_scale(profile, voltage, process, tj_c)

    def exact(mhz: float) -> bool:
        return bool(_slack(profile, mhz, slowest, die)[0] >= L_EXACT)

    # the real-valued boundary, then the float clock on its exact side (a few ulps away at most)
    clock = 1000.0 / (float(slowest[0]) * float(die) * profile.worst_path_ns)
    while not exact(clock):
        clock = math.nextafter(clock, 0.0)
    while exact(math.nextafter(clock, math.inf)):
        clock = math.nextafter(clock, math.inf)
    return clock


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
