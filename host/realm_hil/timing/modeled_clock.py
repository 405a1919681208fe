"""The modeled array clock of the sim and twin backends: a clock becomes a per-PE slack table."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .device_profile import DeviceProfile, load_profile
from .emulation import L_EXACT
from .slack import check_slack_table, slack_table, validate_clock


@dataclass
class ModeledClock:
    """Clock, voltage and variation seed of a modeled device, and the L tables they imply.

    With checks=True the checksum accumulators are in the overclocked region too and get their
    own table, check_slack (CHECK_GROUPS, n); otherwise check_slack is None.
    """

    profile: DeviceProfile
    array_n: int
    seed: int = 0
    voltage: float | None = None
    checks: bool = False
    mhz: float = field(init=False)
    slack: np.ndarray = field(init=False)
    check_slack: np.ndarray | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.profile = load_profile(self.profile)
        self.set(self.profile.nominal_clock_mhz)

    def set(self, mhz: float, *, force: bool = False, voltage: float | None = None) -> float:
        """Move to a new clock (and optionally supply voltage); returns the clock applied.

        Everything is computed before anything is stored: a refused clock or voltage leaves the
        clock as it was.
        """
        mhz = validate_clock(self.profile, mhz, force)
        voltage = self.voltage if voltage is None else voltage
        slack = slack_table(self.profile, mhz, self.array_n, self.seed, voltage)
        check_slack = check_slack_table(self.profile, mhz, self.array_n, self.seed, voltage) if self.checks else None
        self.voltage, self.slack, self.check_slack, self.mhz = voltage, slack, check_slack, mhz
        return mhz

    @property
    def exact(self) -> bool:
        """True when no emulated accumulator (PE, and checksum with checks) can produce a late bit."""
        tables = [self.slack] if self.check_slack is None else [self.slack, self.check_slack]
        return all(bool((t >= L_EXACT).all()) for t in tables)
