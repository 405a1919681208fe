"""How each pynq-driven backend moves the array clock: modeled in simulation, real on a board."""

from __future__ import annotations

from ..clock_generators import MMCM_7SERIES, MMCM_ULTRASCALE_PLUS, ClockWizard, NominalClockGuard, PsClock
from ..driver import AccelDriver
from ..errors import InputError
from ..timing.device_profile import DeviceProfile, load_profile
from ..timing.modeled_clock import ModeledClock
from ..timing.slack import validate_clock


class SimClock:
    """The Verilated array's clock: a frequency becomes per-PE slack loaded into the L table.

    A build with EMU_CHECKS also gets the checksum accumulators' slack in CK_L_TABLE.
    """

    def __init__(self, driver: AccelDriver, profile: str, seed: int, voltage: float | None = None) -> None:
        self.driver = driver
        self.model = ModeledClock(profile, driver.array_n, seed, voltage, checks=driver.emu_checks)
        self._load()

    def _load(self) -> None:
        self.driver.write_slack_table(self.model.slack)
        if self.model.check_slack is not None:
            self.driver.write_check_slack_table(self.model.check_slack)
        self.driver.enable_timing_emulation(not self.model.exact)

    @property
    def mhz(self) -> float:
        return self.model.mhz

    @property
    def nominal_mhz(self) -> float:
        return self.model.profile.nominal_clock_mhz

    def set(self, mhz: float, *, force: bool = False, voltage: float | None = None) -> float:
        applied = self.model.set(mhz, force=force, voltage=voltage)
        self._load()
        return applied

    def restore(self) -> None:
        self.set(self.nominal_mhz)


class BoardClock:
    """The board's array clock through a Clocking Wizard when the overlay has one, else the PS FCLK.

    The frequency really reached is read back; the nominal clock comes back on close, on errors
    and on Ctrl-C (NominalClockGuard), and requests above the profile's ceiling need force.
    """

    def __init__(self, overlay, profile: str | DeviceProfile, wizard_cell: str, wizard_input_mhz: float) -> None:
        self.profile = load_profile(profile)
        if wizard_cell in overlay.ip_dict:
            from pynq import MMIO

            ip = overlay.ip_dict[wizard_cell]
            limits = MMCM_7SERIES if self.profile.device.upper().startswith("XC7") else MMCM_ULTRASCALE_PLUS
            mmio = MMIO(ip["phys_addr"], ip["addr_range"], device=ip.get("device"))
            self.source = ClockWizard(mmio, wizard_input_mhz, limits)
            self.kind = "clocking wizard"
        else:
            self.source = PsClock(0)
            self.kind = "PS FCLK0 (coarse IO PLL divider steps)"
        self.guard = NominalClockGuard(self.restore)
        self._mhz = self.source.set_frequency(self.profile.nominal_clock_mhz)

    @property
    def mhz(self) -> float:
        return self._mhz

    @property
    def nominal_mhz(self) -> float:
        return self.profile.nominal_clock_mhz

    def set(self, mhz: float, *, force: bool = False, voltage: float | None = None) -> float:
        if voltage is not None:
            raise InputError("supply voltage cannot be set from the host on this board; use sim or twin")
        validate_clock(self.profile, mhz, force)
        self.guard.arm()
        self._mhz = self.source.set_frequency(mhz)
        return self._mhz

    def restore(self) -> None:
        self._mhz = self.source.set_frequency(self.nominal_mhz)
        self.guard.restore()
