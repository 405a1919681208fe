"""The modeled array of the sim and twin backends: one die at an operating point becomes its L tables."""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field

import numpy as np

from ..operating_point import OperatingPoint
from .device_profile import DeviceProfile, load_profile
from .emulation import L_EXACT
from .slack import check_slack_table, slack_table, validate_clock


@dataclass
class ModeledArray:
    """A die (profile, array size, per-PE variation seed) at an operating point, and the L tables it implies.

    This is the one place a modeled device turns an operating point into slack: the clock through
    the period, the supply voltage through the profile's alpha-power law (docs/timing-error-model.md).
    With checks=True the checksum accumulators are in the overclocked region too and get their own
    table, check_slack (CHECK_GROUPS, n); otherwise check_slack is None. The array starts at the
    nominal clock and at `voltage_v` (None: the nominal supply).
    """

    profile: DeviceProfile
    array_n: int
    seed: int = 0
    checks: bool = False
    voltage_v: InitVar[float | None] = None
    point: OperatingPoint = field(init=False)
    slack: np.ndarray = field(init=False)
    check_slack: np.ndarray | None = field(init=False, default=None)

    def __post_init__(self, voltage_v: float | None) -> None:
        self.profile = load_profile(self.profile)
        self.set(OperatingPoint(self.profile.nominal_clock_mhz, voltage_v))

    @property
    def nominal(self) -> OperatingPoint:
        return OperatingPoint(self.profile.nominal_clock_mhz)

    def set(self, point: OperatingPoint, *, force: bool = False) -> OperatingPoint:
        """Move to `point`; returns it. Clocks above the profile's safety ceiling need force.

        Everything is computed before anything is stored: a refused clock or voltage leaves the
        array as it was.
        """
        validate_clock(self.profile, point.clock_mhz, force)
        slack = slack_table(self.profile, point.clock_mhz, self.array_n, self.seed, point.voltage_v)
        check_slack = (check_slack_table(self.profile, point.clock_mhz, self.array_n, self.seed, point.voltage_v)
                       if self.checks else None)
        self.point, self.slack, self.check_slack = point, slack, check_slack
        return point

    @property
    def exact(self) -> bool:
        """True when no emulated accumulator (PE, and checksum with checks) can produce a late bit."""
        tables = [self.slack] if self.check_slack is None else [self.slack, self.check_slack]
        return all(bool((t >= L_EXACT).all()) for t in tables)
