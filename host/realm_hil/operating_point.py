"""The operating point of a device: the array clock and the supply voltage it runs at."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from .errors import InputError


@dataclass(frozen=True)
class OperatingPoint:
    """Array clock in MHz and supply voltage in V; voltage_v None means the device's nominal supply."""

    clock_mhz: float
    voltage_v: float | None = None

    def __post_init__(self) -> None:
        if not _positive(self.clock_mhz):
            raise InputError(f"clock must be a positive frequency in MHz, got {self.clock_mhz!r}")
        if self.voltage_v is not None and not _positive(self.voltage_v):
            raise InputError(f"supply voltage must be a positive number of volts, got {self.voltage_v!r}")
        object.__setattr__(self, "clock_mhz", float(self.clock_mhz))
        if self.voltage_v is not None:
            object.__setattr__(self, "voltage_v", float(self.voltage_v))


def _positive(value) -> bool:
    # bool is an int to Python, and nan or inf pass a plain `> 0`
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0
