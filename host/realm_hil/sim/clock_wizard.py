"""The simulated board's Clocking Wizard, at the register level of PG065 v6.0 (dynamic reconfiguration over AXI4-Lite).

Registers, as byte offsets in the wizard's window:
- 0x04 status: bit 0 LOCKED;
- 0x200 CFG0: DIVCLK_DIVIDE [7:0], CLKFBOUT_MULT [15:8] and its fraction in thousandths [25:16];
- 0x208 CLKOUT0: DIVIDE [7:0] and its fraction in thousandths [17:8]; 0x20C its phase, 0x210 its duty;
- 0x25C: SEN (bit 0) starts a reconfiguration, with SADDR (bit 1) from the registers above, without
  it from the setting the design was built with.

Time is the board's, in cycles of the safe clock that also clocks the wizard's AXI port: whatever the
rest of the board has run (board_cycles) plus ACCESS_CYCLES for every access to the wizard. SEN puts
the MMCM in reset drop_cycles later; until then the status register still shows the old lock. LOCKED
returns lock_cycles after the drop if the MMCM can run at the new setting (an output of at most
fails_above_mhz), else never, until another setting is loaded. The array clock is stopped from the
drop to the relock; what that does to the array is the board's to model (on_drop).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..clock_generators import (
    CLKWIZ_CFG0,
    CLKWIZ_CLKOUT0_DIV,
    CLKWIZ_LOAD,
    CLKWIZ_LOCKED,
    CLKWIZ_STATUS,
    MMCM_ULTRASCALE_PLUS,
    WIZARD_INPUT_MHZ,
    MmcmSetting,
    mmcm_setting,
    setting_from_registers,
)

# one AXI4-Lite access from the PS through the interconnect, in safe-clock cycles
ACCESS_CYCLES = 32
LOAD_SEN = 0x1
LOAD_SADDR = 0x2


@dataclass(frozen=True)
class WizardTiming:
    # SEN to LOCKED low in the status register: the reconfiguration state machine resets the MMCM at
    # once, the status register's synchronizer follows a few cycles later
    drop_cycles: int = 8
    # MMCM reset released to LOCKED: 10 us at 100 MHz, well within the MMCM lock time of DS187 and DS925
    lock_cycles: int = 1000
    # the MMCM never locks at an output above this (a setting the part cannot run)
    fails_above_mhz: float = math.inf


class ClockWizardModel:
    """The wizard's registers and its MMCM's lock, in board time; events records loads, drops and locks."""

    def __init__(self, board_cycles: Callable[[], int], on_drop: Callable[[], None], events,
                 timing: WizardTiming | None = None) -> None:
        self._board_cycles = board_cycles
        self._on_drop = on_drop
        self.events = events
        self.timing = timing or WizardTiming()
        self._own_cycles = 0
        self._registers: dict[int, int] = {}
        self._default: MmcmSetting | None = None
        self._running: MmcmSetting | None = None
        self._locked = False
        self._pending: tuple[int, MmcmSetting] | None = None

    def now(self) -> int:
        return self._board_cycles() + self._own_cycles

    def power_up(self, mhz: float) -> None:
        """Configured by a download: the design's own setting at `mhz`, locked."""
        self._default = self._running = mmcm_setting(mhz, WIZARD_INPUT_MHZ, MMCM_ULTRASCALE_PLUS)
        self._registers = dict(self._default.registers())
        self._locked = True
        self._pending = None

    @property
    def locked(self) -> bool:
        self.update()
        return self._locked

    @property
    def mhz(self) -> float | None:
        """The frequency the MMCM runs at; None while it is stopped."""
        self.update()
        return self._running.output_mhz if self._running is not None else None

    def update(self) -> None:
        """Bring the MMCM up to the board's present time: the drop, then the relock, as they fall due."""
        if self._pending is None:
            return
        start, setting = self._pending
        t = self.now()
        if self._locked and t >= start + self.timing.drop_cycles:
            self._locked, self._running = False, None
            self.events.append(("drop", start + self.timing.drop_cycles, None))
            self._on_drop()
        relock = start + self.timing.drop_cycles + self.timing.lock_cycles
        if not self._locked and t >= relock and setting.output_mhz <= self.timing.fails_above_mhz:
            self._locked, self._running, self._pending = True, setting, None
            self.events.append(("lock", relock, setting.output_mhz))

    def read(self, offset: int) -> int:
        self.update()
        value = int(self._locked) * CLKWIZ_LOCKED if offset == CLKWIZ_STATUS else self._registers.get(offset, 0)
        if offset == CLKWIZ_STATUS:
            self.events.append(("status", self.now(), value))
        self._own_cycles += ACCESS_CYCLES
        return value

    def write(self, offset: int, value: int) -> None:
        self.update()
        if offset == CLKWIZ_LOAD:
            if value & LOAD_SEN:
                if value & LOAD_SADDR:
                    cfg0, div = self._registers.get(CLKWIZ_CFG0, 0), self._registers.get(CLKWIZ_CLKOUT0_DIV, 0)
                    setting = setting_from_registers(cfg0, div, WIZARD_INPUT_MHZ)
                else:
                    setting = self._default
                self._pending = (self.now(), setting)
                self.events.append(("load", self.now(), setting.output_mhz))
        elif offset != CLKWIZ_STATUS:
            self._registers[offset] = value
        self._own_cycles += ACCESS_CYCLES
