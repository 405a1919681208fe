"""The junction temperature of a modeled die: ambient trace, first-order thermal path, power from the array.

    dTj/dt = (Ta(t) + theta * P - Tj) / tau

with theta (junction to ambient) and tau from the device profile, Ta(t) a piecewise-linear ambient
trace, and P = static_power_w + array_power_w * (f / f_nom) * (V / V_nom)^2 * activity, constant
over a GEMM (the operating point does not change inside one). Device time is never wall-clock: it
advances by the array cycles a GEMM spends at its clock (abft/cost.py CostModel.call_cycles), times
an optional compression factor, so a seed gives the same temperature history on every machine, and
a thermal time constant of a minute can be crossed with minutes, not hours, of simulated work. Each
step is the exact solution of the equation over the step (piecewise in the ambient's segments), not
a numerical integration, so splitting a stretch of work into more GEMMs does not change where the
junction ends up (beyond float rounding).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise

from ..errors import InputError
from .device_profile import DeviceProfile


def _finite(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InputError(f"{what} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class AmbientTrace:
    """Ambient temperature in C over modeled seconds: linear between (seconds, C) points, held after the last."""

    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        points = tuple((_finite(t, "an ambient trace time"), _finite(c, "an ambient temperature"))
                       for t, c in self.points)
        if not points or points[0][0] != 0:
            raise InputError("an ambient trace starts at time 0")
        if any(b[0] <= a[0] for a, b in pairwise(points)):
            raise InputError("an ambient trace's times must increase")
        object.__setattr__(self, "points", points)

    @classmethod
    def constant(cls, celsius: float) -> AmbientTrace:
        return cls(((0.0, celsius),))

    @classmethod
    def ramp(cls, start_c: float, end_c: float, seconds: float, hold_s: float = 0.0) -> AmbientTrace:
        """start_c for hold_s, then linearly to end_c over `seconds`, then end_c."""
        if _finite(seconds, "a ramp duration") <= 0 or _finite(hold_s, "a hold time") < 0:
            raise InputError("a ramp takes a positive duration after a non-negative hold")
        head = ((0.0, start_c), (hold_s, start_c)) if hold_s else ((0.0, start_c),)
        return cls((*head, (hold_s + seconds, end_c)))

    def at(self, seconds: float) -> float:
        for (t0, c0), (t1, c1) in pairwise(self.points):
            if seconds < t1:
                return c0 + (c1 - c0) * (max(seconds, t0) - t0) / (t1 - t0)
        return self.points[-1][1]

    def pieces(self, start: float, stop: float) -> Iterator[tuple[float, float]]:
        """(start, end) sub-intervals of [start, stop] on which the trace is linear."""
        cuts = [t for t, _ in self.points if start < t < stop]
        yield from pairwise([start, *cuts, stop])

    def slope(self, seconds: float) -> float:
        """Slope in C/s of the segment that starts at or before `seconds`."""
        for (t0, c0), (t1, c1) in pairwise(self.points):
            if seconds < t1:
                return (c1 - c0) / (t1 - t0)
        return 0.0


@dataclass(frozen=True)
class ThermalEnvironment:
    """A die in an ambient: its junction follows the ambient trace, the thermal path and its power.

    time_compression: modeled thermal seconds per second of array time (1: none). start_tj_c: the
    junction at time 0; None is the board idling before the run, Ta(0) + theta * static power.
    """

    ambient: AmbientTrace
    time_compression: float = 1.0
    start_tj_c: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.ambient, AmbientTrace):
            raise InputError(f"the ambient is an AmbientTrace, not {type(self.ambient).__name__}")
        if _finite(self.time_compression, "time compression") <= 0:
            raise InputError("time compression must be positive")
        if self.start_tj_c is not None:
            _finite(self.start_tj_c, "a start junction temperature")


@dataclass(frozen=True)
class HeldJunction:
    """A die whose junction is held at tj_c whatever it dissipates (a thermal chamber with a forcing head)."""

    tj_c: float

    def __post_init__(self) -> None:
        _finite(self.tj_c, "a held junction temperature")


Environment = ThermalEnvironment | HeldJunction


def array_power(profile: DeviceProfile, clock_mhz: float, voltage_v: float | None, activity: float) -> float:
    """Total power in W at an operating point with the array busy a fraction `activity` of its cycles."""
    volts = profile.v_nominal if voltage_v is None else voltage_v
    dynamic = profile.array_power_w * (clock_mhz / profile.nominal_clock_mhz) * (volts / profile.v_nominal) ** 2
    return profile.static_power_w + dynamic * activity


class Junction:
    """The junction temperature of one die over modeled time."""

    def __init__(self, profile: DeviceProfile, environment: Environment) -> None:
        self.profile = profile
        self.environment = environment
        self.time_s = 0.0
        self.power_w = profile.static_power_w
        if isinstance(environment, HeldJunction):
            self.tj_c = environment.tj_c
        elif environment.start_tj_c is not None:
            self.tj_c = environment.start_tj_c
        else:
            self.tj_c = environment.ambient.at(0.0) + profile.theta_ja_c_per_w * profile.static_power_w

    @property
    def ambient_c(self) -> float | None:
        if isinstance(self.environment, HeldJunction):
            return None
        return self.environment.ambient.at(self.time_s)

    def advance(self, array_seconds: float, power_w: float) -> None:
        """Let `array_seconds` of array time pass at constant power `power_w`."""
        if isinstance(self.environment, HeldJunction):
            self.time_s += array_seconds
            self.power_w = power_w
            return
        env, tau = self.environment, self.profile.thermal_tau_s
        rise = self.profile.theta_ja_c_per_w * power_w
        stop = self.time_s + array_seconds * env.time_compression
        tj = self.tj_c
        for a, b in env.ambient.pieces(self.time_s, stop):
            # exact on a linear ambient piece Ta(t) = Ta(a) + s (t - a): the junction tracks
            # Ta + rise - s tau, and its distance from that decays as exp(-t / tau)
            slope = env.ambient.slope(a)
            track = env.ambient.at(a) + rise - slope * tau
            tj = track + slope * (b - a) + (tj - track) * math.exp(-(b - a) / tau)
        self.time_s, self.tj_c, self.power_w = stop, tj, power_w
