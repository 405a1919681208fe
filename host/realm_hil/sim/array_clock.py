"""The Verilated array's clock: an operating point becomes per-PE slack loaded into the accelerator's L table."""

from __future__ import annotations

from ..driver import AccelDriver
from ..operating_point import OperatingPoint
from ..tiling import TilePlan
from ..timing.modeled_array import DieReading, ModeledArray
from ..timing.thermal import Environment


class SimClock:
    """The modeled array of a Verilated accelerator, kept in its L tables through the host driver.

    A build with EMU_CHECKS also gets the checksum accumulators' slack in CK_L_TABLE.
    """

    def __init__(self, driver: AccelDriver, profile: str, seed: int, voltage_v: float | None = None,
                 environment: Environment | None = None) -> None:
        self.driver = driver
        self.array = ModeledArray(profile, driver.array_n, seed, driver.emu_checks, voltage_v, environment)
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

    @property
    def die(self) -> DieReading:
        return self.array.reading()

    def spent(self, plan: TilePlan) -> None:
        """After a GEMM: the die's junction moves; new tables are loaded before the next GEMM."""
        if self.array.spend(plan):
            self._load()

    def set(self, point: OperatingPoint, *, force: bool = False) -> OperatingPoint:
        applied = self.array.set(point, force=force)
        self._load()
        return applied

    def restore(self) -> None:
        self.set(self.nominal)
