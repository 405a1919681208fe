"""The Accelerator interface on top of AccelDriver: one backend for the board and the simulation."""

from __future__ import annotations

import threading
from pathlib import Path

from ..accelerator import Accelerator
from ..driver import AccelDriver, IncompatibleAccelerator
from ..gemm_call import GemmCall, GemmResult
from ..operating_point import OperatingPoint
from ..regmap import BD_CELLS
from ..stats import GemmStats, PolicyConfig
from .board_clock import BoardClock

DEFAULT_PROFILE = "pynq-z2"


class PynqAccelerator(Accelerator):
    """realm_accel reached through pynq: GEMMs, hardware statistics and policy registers."""

    name = "pynq"

    def __init__(self, driver: AccelDriver, clock, *, name: str = "pynq", on_close=None) -> None:
        super().__init__(driver.array_n)
        self.name = name
        self.driver = driver
        self.clock = clock
        self._on_close = on_close
        self.sensors = None  # a board's system monitor (board_sensors.BoardSensors), read into info()
        # A server thread may still be in a GEMM when another closes: close waits for it, so the
        # device is never freed under a call. Reentrant, so a signal handler that closes on the
        # thread in the GEMM does not deadlock (the sim then refuses the GEMM's next step).
        self._lock = threading.RLock()
        driver.set_policy(self.policy)

    def _run(self, call: GemmCall) -> GemmResult:
        with self._lock:
            self._check_open()  # again under the lock: a close on another thread may have come in between
            streamed = self.driver.gemm(call.x, call.w, call.plan)
        plan = call.plan
        return GemmResult(streamed.y, GemmStats(streamed.tiles, (plan.tiles_m, plan.tiles_n), streamed.col_dev,
                                                streamed.row_dev))

    def set_policy(self, policy: PolicyConfig) -> None:
        with self._lock:
            self._check_open()
            self.driver.set_policy(policy)
            super().set_policy(policy)

    @property
    def operating_point(self) -> OperatingPoint:
        return self.clock.point

    @property
    def nominal(self) -> OperatingPoint:
        return self.clock.nominal

    def set_operating_point(self, point: OperatingPoint, *, force: bool = False) -> OperatingPoint:
        with self._lock:
            self._check_open()
            return self.clock.set(point, force=force)

    def info(self) -> dict:
        info = {**super().info(), "timing_emu": self.driver.timing_emu, "inject": self.driver.inject,
                "emulate_checks": self.driver.emu_checks}
        if self.sensors is not None:
            reading = self.sensors.read()
            info.update(die_temp_c=reading.die_temp_c, vccint_v=reading.vccint_v)
        return info

    def close(self) -> None:
        """Restore the nominal clock, then free the driver and the device even when that fails.

        Marked closed first, so a failed restore never leaves a half-freed accelerator that still
        accepts calls; the restore's error propagates (chained under any later one).
        """
        with self._lock:
            if self._closed:
                return
            super().close()
            try:
                self.clock.restore()
            finally:
                try:
                    self.driver.close()
                finally:
                    if self._on_close is not None:
                        self._on_close()


class SimAccelerator(PynqAccelerator):
    """The Verilated accelerator: the board's driver path, with a modeled die as its clock (sim.array_clock)."""

    def _run(self, call: GemmCall) -> GemmResult:
        result = super()._run(call)
        with self._lock:
            if not self._closed:  # a close in between has restored the die's tables for good
                self.clock.spent(call.plan)
        return result

    @property
    def die(self):
        return self.clock.die


def open_sim(array_n: int = 8, waves=None, profile: str = DEFAULT_PROFILE, seed: int = 0,
             voltage_v: float | None = None, emulate_checks: bool = False, environment=None) -> PynqAccelerator:
    """The Verilated accelerator behind the unmodified board driver; `waves` is a sim.binding.WaveOptions.

    emulate_checks=True simulates the EMU_CHECKS=1 build, whose checksum accumulators are overclocked too;
    environment (timing/thermal.py) puts the seed's die in it, None is the sign-off corner.
    """
    from ..sim.array_clock import SimClock
    from ..sim.binding import SimModel
    from ..sim.device import SimDevice

    device = SimDevice(SimModel(array_n, waves=waves, emu_checks=emulate_checks))
    try:
        driver = AccelDriver(device.ip_dict[BD_CELLS["accelerator"]], device.ip_dict[BD_CELLS["dma"]])
        clock = SimClock(driver, profile, seed, voltage_v, environment)
    except BaseException:
        device.close()
        raise
    return SimAccelerator(driver, clock, name="sim", on_close=device.close)


def open_overlay(board_name: str | None = None, manifest: Path | None = None) -> PynqAccelerator:
    """The overlay for `board_name` [pynq-z2] from the manifest's folder (verified against it) on this board."""
    from pynq import Overlay

    from ..fpga.manifest import MANIFEST_PATH, verify_overlay

    manifest = manifest or MANIFEST_PATH
    entry = verify_overlay(board_name or DEFAULT_PROFILE, manifest)
    overlay = Overlay(str(entry.bit_path(manifest.parent)))
    return PynqAccelerator(*overlay_driver(overlay, entry), name="board")


def overlay_driver(overlay, entry) -> tuple[AccelDriver, BoardClock]:
    """The driver and clock of a downloaded realm-hil overlay, checked against its manifest entry."""
    for cell in (BD_CELLS["accelerator"], BD_CELLS["dma"]):
        if cell not in overlay.ip_dict:
            raise IncompatibleAccelerator(
                f"overlay {entry.bitfile} has no '{cell}' cell; it is not a realm-hil overlay")
    driver = AccelDriver(overlay.ip_dict[BD_CELLS["accelerator"]], overlay.ip_dict[BD_CELLS["dma"]])
    if driver.array_n != entry.array_n:
        raise IncompatibleAccelerator(
            f"overlay reports a {driver.array_n}x{driver.array_n} array, manifest says {entry.array_n}")
    # Overlay() reprograms the PL clocks from the design's metadata, so the clock is set after it
    clock = BoardClock(overlay, entry.board, BD_CELLS["clock_wizard"], driver.soft_reset)
    return driver, clock
