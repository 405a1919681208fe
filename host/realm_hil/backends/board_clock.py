"""A board's array clock: real, through a Clocking Wizard or the PS FCLK; its supply is not the host's to set."""

from __future__ import annotations

from ..clock_generators import (
    MMCM_7SERIES,
    MMCM_ULTRASCALE_PLUS,
    WIZARD_INPUT_MHZ,
    ClockWizard,
    NominalClockGuard,
    PsClock,
)
from ..errors import InputError
from ..operating_point import OperatingPoint
from ..timing.device_profile import DeviceProfile, load_profile
from ..timing.slack import validate_clock


class BoardClock:
    """The board's array clock through a Clocking Wizard when the overlay has one, else the PS FCLK.

    The frequency really reached is read back; the nominal clock comes back on close, on errors
    and on Ctrl-C (NominalClockGuard), and requests above the profile's ceiling need force.
    """

    def __init__(self, overlay, profile: str | DeviceProfile, wizard_cell: str) -> None:
        self.profile = load_profile(profile)
        if wizard_cell in overlay.ip_dict:
            from pynq import MMIO

            ip = overlay.ip_dict[wizard_cell]
            limits = MMCM_7SERIES if self.profile.device.upper().startswith("XC7") else MMCM_ULTRASCALE_PLUS
            mmio = MMIO(ip["phys_addr"], ip["addr_range"], device=ip.get("device"))
            self.source = ClockWizard(mmio, WIZARD_INPUT_MHZ, limits)
            self.kind = "clocking wizard"
        else:
            self.source = PsClock(0)
            self.kind = "PS FCLK0 (coarse IO PLL divider steps)"
        self.guard = NominalClockGuard(self.restore)
        self.point = OperatingPoint(self.source.set_frequency(self.profile.nominal_clock_mhz))

    @property
    def nominal(self) -> OperatingPoint:
        return OperatingPoint(self.profile.nominal_clock_mhz)

    def set(self, point: OperatingPoint, *, force: bool = False) -> OperatingPoint:
        """Set the clock; returns the point reached, with the clock read back."""
        if point.voltage_v is not None:
            raise InputError("the supply voltage cannot be set from the host on a board; sim and twin model it")
        validate_clock(self.profile, point.clock_mhz, force)
        self.guard.arm()
        self.point = OperatingPoint(self.source.set_frequency(point.clock_mhz))
        return self.point

    def restore(self) -> None:
        self.point = OperatingPoint(self.source.set_frequency(self.nominal.clock_mhz))
        self.guard.restore()
