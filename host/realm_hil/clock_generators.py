"""The array clock's generator on a board, and the guard that puts the nominal clock back on every exit.

The array clock comes from a Clocking Wizard (MMCM) with AXI4-Lite dynamic reconfiguration (Xilinx
PG065 v6.0) fed by the PS's fixed clock: fine steps, and the frequency really applied is read back
from its registers. The PS clock itself is never moved (docs/timing-error-model.md, "Clock control on
real boards").
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from fractions import Fraction

from .errors import InputError, RealmError

# Clocking Wizard register offsets (PG065)
CLKWIZ_STATUS = 0x04
CLKWIZ_CFG0 = 0x200
CLKWIZ_CLKOUT0_DIV = 0x208
CLKWIZ_CLKOUT0_PHASE = 0x20C
CLKWIZ_CLKOUT0_DUTY = 0x210
CLKWIZ_LOAD = 0x25C
# SEN (bit 0) starts a reconfiguration; SADDR (bit 1) takes the settings from the registers above, not
# from the values the design was built with
CLKWIZ_LOAD_CMD = 0x3
CLKWIZ_LOCKED = 0x1  # in CLKWIZ_STATUS
# the Clocking Wizard is fed by the PS's fixed 100 MHz clock in every board design (fpga/*/board.tcl); on
# ZynqMP that clock is 99.999 MHz (33.333 MHz reference), so frequencies read back there are 10 ppm high
WIZARD_INPUT_MHZ = 100.0
DUTY_50_PERCENT = 50_000


@dataclass(frozen=True)
class MmcmLimits:
    """Legal MMCM settings for a device family (VCO range in MHz)."""

    vco_min: float
    vco_max: float
    mult_max: int = 64
    divclk_max: int = 106
    out_div_max: int = 128


# 7-series (-1 speed grade, XC7Z020) and UltraScale+ (ZU7EV, K26) MMCM VCO ranges
MMCM_7SERIES = MmcmLimits(600.0, 1200.0)
MMCM_ULTRASCALE_PLUS = MmcmLimits(800.0, 1600.0)
# fractional multiplier and CLKOUT0 divider move in 1/8 steps
FRAC_STEP = Fraction(1, 8)


@dataclass(frozen=True)
class MmcmSetting:
    divclk: int
    mult: Fraction  # CLKFBOUT_MULT_F
    out_div: Fraction  # CLKOUT0_DIVIDE_F
    input_mhz: float

    @property
    def output_mhz(self) -> float:
        return float(Fraction(self.input_mhz).limit_denominator(10**6) * self.mult / (self.divclk * self.out_div))

    def registers(self) -> dict[int, int]:
        """Register writes that program this setting (fractions in thousandths, as PG065 encodes them)."""
        mult_int, mult_frac = int(self.mult), int((self.mult - int(self.mult)) * 1000)
        div_int, div_frac = int(self.out_div), int((self.out_div - int(self.out_div)) * 1000)
        return {
            CLKWIZ_CFG0: self.divclk | (mult_int << 8) | (mult_frac << 16),
            CLKWIZ_CLKOUT0_DIV: div_int | (div_frac << 8),
            CLKWIZ_CLKOUT0_PHASE: 0,
            CLKWIZ_CLKOUT0_DUTY: DUTY_50_PERCENT,
        }


def mmcm_setting(target_mhz: float, input_mhz: float, limits: MmcmLimits) -> MmcmSetting:
    """The legal MMCM setting whose output is closest to target_mhz (ties: lowest VCO jitter aside, lowest D)."""
    if target_mhz <= 0:
        raise InputError(f"clock must be positive, got {target_mhz} MHz")
    best: tuple[float, MmcmSetting] | None = None
    fin = Fraction(input_mhz).limit_denominator(10**6)
    for divclk in range(1, limits.divclk_max + 1):
        pfd = fin / divclk
        # the multiplier must keep the VCO in range: scan its legal 1/8 steps for this D
        lo = max(Fraction(2), Fraction(limits.vco_min) / pfd)
        hi = min(Fraction(limits.mult_max), Fraction(limits.vco_max) / pfd)
        if lo > hi:
            continue
        mult = _ceil_step(lo)
        while mult <= hi:
            vco = pfd * mult
            out_div = _round_step(vco / Fraction(target_mhz).limit_denominator(10**6))
            out_div = min(max(out_div, Fraction(1)), Fraction(limits.out_div_max))
            setting = MmcmSetting(divclk, mult, out_div, input_mhz)
            error = abs(setting.output_mhz - target_mhz)
            if best is None or error < best[0] - 1e-9:
                best = (error, setting)
            mult += FRAC_STEP
    if best is None:
        raise InputError(f"no legal MMCM setting for {target_mhz} MHz from a {input_mhz} MHz input")
    return best[1]


def setting_from_registers(cfg0: int, clkout0_div: int, input_mhz: float) -> MmcmSetting:
    """Decode CFG0 and CLKOUT0_DIVIDE back into the setting they program."""
    mult = Fraction((cfg0 >> 8) & 0xFF) + Fraction((cfg0 >> 16) & 0x3FF, 1000)
    out_div = Fraction(clkout0_div & 0xFF) + Fraction((clkout0_div >> 8) & 0x3FF, 1000)
    return MmcmSetting(cfg0 & 0xFF, mult, out_div, input_mhz)


def _ceil_step(value: Fraction) -> Fraction:
    return -((-value) // FRAC_STEP) * FRAC_STEP


def _round_step(value: Fraction) -> Fraction:
    return round(value / FRAC_STEP) * FRAC_STEP


class WizardLockError(RealmError, TimeoutError):
    """The Clocking Wizard's MMCM did not lock: the array clock is stopped."""


class ClockWizard:
    """Dynamic reconfiguration of a Clocking Wizard through its AXI4-Lite port (any object with read/write).

    PG065's sequence: with the MMCM locked, write CFG0 and CLKOUT0, then SEN. The wizard then holds the
    MMCM in reset while it rewrites it, so LOCKED drops, and raises LOCKED again once the MMCM has
    relocked at the new setting; with safe clock start-up (fpga/common/build_bd.tcl) the array clock is
    gated off in between. The status register reads the old lock for the few cycles before the drop,
    so a status read that soon after SEN proves nothing: set_frequency waits for the drop, then for
    LOCKED. A read issued drop_window_s after SEN comes after the drop in any case, which is how a
    link too slow to see the drop at all (PYNQ.remote: a register read is a network round trip, longer
    than the whole relock) still waits correctly.
    """

    # drop_window_s: PG065's state machine resets the MMCM within a few cycles of SEN; 0.1 s covers that
    # many times over, plus any latency between host and PL, and costs nothing when the drop is seen
    def __init__(self, mmio, input_mhz: float, limits: MmcmLimits, *, lock_timeout_s: float = 1.0,
                 drop_window_s: float = 0.1, poll_s: float = 1e-4) -> None:
        self.mmio = mmio
        self.input_mhz = input_mhz
        self.limits = limits
        self.lock_timeout_s = lock_timeout_s
        self.drop_window_s = drop_window_s
        self.poll_s = poll_s

    def _locked(self) -> bool:
        return bool(self.mmio.read(CLKWIZ_STATUS) & CLKWIZ_LOCKED)

    def _wait_locked(self, deadline: float) -> bool:
        while not self._locked():
            if time.monotonic() > deadline:
                return False
            time.sleep(self.poll_s)
        return True

    def _wait_for_drop(self, loaded: float) -> None:
        while time.monotonic() - loaded < self.drop_window_s:
            if not self._locked():
                return
            time.sleep(self.poll_s)

    def set_frequency(self, mhz: float) -> float:
        """Reprogram the MMCM for the legal setting nearest `mhz` and wait until it runs there; returns its MHz.

        Raises WizardLockError when the MMCM does not relock within lock_timeout_s.
        """
        setting = mmcm_setting(mhz, self.input_mhz, self.limits)
        # an earlier reconfiguration may still be locking; a setting the MMCM never locks at is left
        # only by loading another one, so the load goes ahead either way
        self._wait_locked(time.monotonic() + self.lock_timeout_s)
        for offset, value in setting.registers().items():
            self.mmio.write(offset, value)
        self.mmio.write(CLKWIZ_LOAD, CLKWIZ_LOAD_CMD)
        self._wait_for_drop(time.monotonic())
        if not self._wait_locked(time.monotonic() + self.lock_timeout_s):
            raise WizardLockError(
                f"the Clocking Wizard did not lock at {setting.output_mhz:.3f} MHz within {self.lock_timeout_s:g} s "
                "of reprogramming it; the array clock is stopped")
        return self.read_frequency()

    def read_frequency(self) -> float:
        cfg0 = self.mmio.read(CLKWIZ_CFG0)
        return setting_from_registers(cfg0, self.mmio.read(CLKWIZ_CLKOUT0_DIV), self.input_mhz).output_mhz


class NominalClockGuard:
    """Restores the nominal clock on close, on an exception and on SIGINT/SIGTERM.

    Signal handlers are chained, so Ctrl-C still raises KeyboardInterrupt after the clock is back.
    """

    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, restore) -> None:
        self._restore = restore
        self._previous: dict[int, object] = {}
        self._armed = False

    def arm(self) -> None:
        if self._armed:
            return
        self._armed = True
        if threading.current_thread() is threading.main_thread():
            for sig in self._SIGNALS:
                self._previous[sig] = signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        self.restore()
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, frame)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:
            raise SystemExit(128 + signum)

    def restore(self) -> None:
        if not self._armed:
            return
        self._armed = False
        try:
            self._restore()
        finally:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)
            self._previous.clear()
