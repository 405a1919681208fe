"""The modeled array clock of the sim and twin backends: a clock becomes a per-PE slack table."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .emulation import L_EXACT
from .profile import DeviceProfile, load_profile
from .slack import slack_table, validate_clock


@dataclass
class ModeledClock:
    """Clock, voltage and variation seed of a modeled device, and the L table they imply."""

    profile: DeviceProfile
    array_n: int
    seed: int = 0
    voltage: float | None = None
    mhz: float = field(init=False)
    slack: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.profile = load_profile(self.profile)
        self.set(self.profile.nominal_clock_mhz)

    def set(self, mhz: float, *, force: bool = False, voltage: float | None = None) -> float:
        """Move to a new clock (and optionally supply voltage); returns the clock applied."""
        mhz = validate_clock(self.profile, mhz, force)
        if voltage is not None:
            self.voltage = voltage
        self.slack = slack_table(self.profile, mhz, self.array_n, self.seed, self.voltage)
        self.mhz = mhz
        return mhz

    @property
    def exact(self) -> bool:
        """True when no PE can produce a late bit at this clock."""
        return bool((self.slack >= L_EXACT).all())
