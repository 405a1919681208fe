"""The Verilated array's clock: an operating point becomes per-PE slack loaded into the accelerator's L table."""

from __future__ import annotations

from ..driver import AccelDriver
from ..operating_point import OperatingPoint
from ..timing.modeled_array import ModeledArray


class SimClock:
    """The modeled array of a Verilated accelerator, kept in its L tables through the host driver.

    A build with EMU_CHECKS also gets the checksum accumulators' slack in CK_L_TABLE.
    """

    def __init__(self, driver: AccelDriver, profile: str, seed: int, voltage_v: float | None = None) -> None:
        self.driver = driver
        self.array = ModeledArray(profile, driver.array_n, seed, driver.emu_checks, voltage_v)
        self._load()

    def _load(self) -> None:
        self.driver.write_slack_table(self.array.slack)
        if self.array.check_slack is not None:
            self.driver.write_check_slack_table(self.array.check_slack)
        self.driver.enable_timing_emulation(not self.array.exact)

    @property
    def point(self) -> OperatingPoint:
        return self.array.point

    @property
    def nominal(self) -> OperatingPoint:
        return self.array.nominal

    def set(self, point: OperatingPoint, *, force: bool = False) -> OperatingPoint:
        applied = self.array.set(point, force=force)
        self._load()
        return applied

    def restore(self) -> None:
        self.set(self.nominal)
