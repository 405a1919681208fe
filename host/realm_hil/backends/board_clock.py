"""A board's array clock, through the overlay's Clocking Wizard; its supply is not the host's to set."""

from __future__ import annotations

from collections.abc import Callable

from ..clock_generators import (
    MMCM_7SERIES,
    MMCM_ULTRASCALE_PLUS,
    WIZARD_INPUT_MHZ,
    ClockWizard,
    NominalClockGuard,
    WizardLockError,
)
from ..driver import IncompatibleAccelerator
from ..errors import InputError
from ..operating_point import OperatingPoint
from ..timing.device_profile import DeviceProfile, load_profile
from ..timing.slack import validate_clock


class BoardClock:
    """The array clock of a realm-hil overlay: its Clocking Wizard, then a reset of the array side.

    Every change (the nominal clock at open and on restore included) waits until the wizard has
    dropped lock and relocked at the new setting, then calls reset_array (the driver's
    CTRL.SOFT_RESET), so nothing the array held while its clock was stopped can pass for a timing
    error. The frequency really reached is read back; the nominal clock comes back on close, on
    errors and on Ctrl-C (NominalClockGuard); requests above the profile's ceiling need force.

    An overlay without the wizard is refused: the only other clock the host could move is the PS's
    FCLK0, which in realm-hil's block design also clocks the AXI bus, the DMA and the checking logic,
    and feeds the wizard.
    """

    def __init__(self, overlay, profile: str | DeviceProfile, wizard_cell: str,
                 reset_array: Callable[[], None]) -> None:
        self.profile = load_profile(profile)
        if wizard_cell not in overlay.ip_dict:
            raise IncompatibleAccelerator(
                f"the overlay has no Clocking Wizard '{wizard_cell}' on the array clock, and realm-hil will not "
                "move the PS clock FCLK0 instead: it also clocks the AXI bus, the DMA and the checking logic; "
                "build the overlay with fpga/ (make -C fpga)")
        from pynq import MMIO

        ip = overlay.ip_dict[wizard_cell]
        limits = MMCM_7SERIES if self.profile.device.upper().startswith("XC7") else MMCM_ULTRASCALE_PLUS
        mmio = MMIO(ip["phys_addr"], ip["addr_range"], device=ip.get("device"))
        self.source = ClockWizard(mmio, WIZARD_INPUT_MHZ, limits)
        self.reset_array = reset_array
        self.guard = NominalClockGuard(self.restore)
        self.point = self._apply(self.nominal.clock_mhz)

    @property
    def nominal(self) -> OperatingPoint:
        return OperatingPoint(self.profile.nominal_clock_mhz)

    def _apply(self, mhz: float) -> OperatingPoint:
        """The wizard at `mhz`, locked, then the array side reset; on a lock failure the nominal clock if it can."""
        try:
            reached = self.source.set_frequency(mhz)
        except WizardLockError as exc:
            raise WizardLockError(f"{exc}; {self._recover(mhz)}") from None
        self.reset_array()
        return OperatingPoint(reached)

    def _recover(self, failed_mhz: float) -> str:
        nominal = self.nominal.clock_mhz
        if failed_mhz != nominal:
            try:
                self.point = OperatingPoint(self.source.set_frequency(nominal))
                self.reset_array()
                return f"the nominal {nominal:g} MHz is restored"
            except WizardLockError:
                pass
        return "download the overlay again (reopen the board) to restart it"

    def set(self, point: OperatingPoint, *, force: bool = False) -> OperatingPoint:
        """Set the clock; returns the point reached, with the clock read back."""
        if point.voltage_v is not None:
            raise InputError("the supply voltage cannot be set from the host on a board; sim and twin model it")
        validate_clock(self.profile, point.clock_mhz, force)
        self.guard.arm()
        self.point = self._apply(point.clock_mhz)
        return self.point

    def restore(self) -> None:
        try:
            self.point = self._apply(self.nominal.clock_mhz)
        finally:
            self.guard.restore()
