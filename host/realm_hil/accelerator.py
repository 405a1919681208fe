"""The interface every backend shares: a GEMM in, its result with statistics out; policy; operating point; close."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod

import numpy as np

from .gemm_call import GemmCall, GemmResult, GemmSite
from .operating_point import OperatingPoint
from .stats import GemmStats, PolicyConfig


class AcceleratorClosedError(RuntimeError):
    """A call on an accelerator after close().

    Not a RealmError: that is a problem of the user's setup, printed in one line. Using a closed
    accelerator is a bug in the calling code, so it keeps its traceback.
    """


class Accelerator(ABC):
    """An INT8 GEMM engine with ABFT statistics at an operating point; use as a context manager or call close().

    `last_stats` holds the statistics of the most recent GEMM, a convenience for interactive use;
    code that runs GEMMs takes them from the GemmResult each call returns.
    """

    name: str = "abstract"

    def __init__(self, array_n: int) -> None:
        self.array_n = array_n
        self.last_stats: GemmStats | None = None
        self.policy = PolicyConfig()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        """Every call that reaches the device starts here; reading the operating point, info() or policy does not."""
        if self._closed:
            raise AcceleratorClosedError(f"{self.name} accelerator is closed")

    def gemm(self, x: np.ndarray, w: np.ndarray, *, site: GemmSite | None = None) -> GemmResult:
        """Y = X W with x (M, K) int8 and w (K, N) int8 -> (M, N) int32 and its statistics (GemmCall.prepare)."""
        return self.run(GemmCall.prepare(x, w, self.array_n, site))

    def run(self, call: GemmCall) -> GemmResult:
        """A GEMM already validated and planned (GemmCall.prepare), for this array size."""
        self._check_open()
        if call.plan.array_n != self.array_n:
            raise ValueError(f"a call planned for a {call.plan.array_n}x{call.plan.array_n} array reached "
                             f"a {self.array_n}x{self.array_n} one")
        result = self._run(call)
        self.last_stats = result.stats
        return result

    @abstractmethod
    def _run(self, call: GemmCall) -> GemmResult: ...

    def set_policy(self, policy: PolicyConfig) -> None:
        """Program the statistics unit's recover policy and thresholds."""
        self._check_open()
        self.policy = policy

    @property
    @abstractmethod
    def operating_point(self) -> OperatingPoint:
        """The clock and supply voltage the device runs at now."""

    @property
    @abstractmethod
    def nominal(self) -> OperatingPoint:
        """The device's rated operating point: nominal clock and supply."""

    @abstractmethod
    def set_operating_point(self, point: OperatingPoint, *, force: bool = False) -> OperatingPoint:
        """Move to `point`; returns the point really applied. Clocks above the device's safety ceiling
        need force; a voltage the device cannot take is an InputError. Implementations call
        _check_open() first."""

    def set_clock(self, mhz: float, *, force: bool = False) -> float:
        """A new clock at the present supply voltage; returns the clock really applied."""
        return self.set_operating_point(dataclasses.replace(self.operating_point, clock_mhz=mhz),
                                        force=force).clock_mhz

    @property
    def clock_mhz(self) -> float:
        return self.operating_point.clock_mhz

    @property
    def die(self):
        """The modeled die's state after the last GEMM (timing.modeled_array.DieReading: junction
        temperature, device time, process factor) on the sim and twin; None where no die is modeled.
        A board's junction temperature comes from its own sensors (XADC/SYSMON), not from here."""
        return None

    def info(self) -> dict:
        point = self.operating_point
        return {"backend": self.name, "array_n": self.array_n, "clock_mhz": point.clock_mhz,
                "voltage_v": point.voltage_v}

    def close(self) -> None:
        """Release the device; later calls raise AcceleratorClosedError, a second close does nothing."""
        self._closed = True

    def __enter__(self) -> Accelerator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
