"""The interface every backend shares: gemm, last_stats, set_clock, policy, close."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..stats import GemmStats, PolicyConfig
from ..tiling import validate_operands


class AcceleratorClosedError(RuntimeError):
    """A call on an accelerator after close().

    Not a RealmError: that is a problem of the user's setup, printed in one line. Using a closed
    accelerator is a bug in the calling code, so it keeps its traceback.
    """


class Accelerator(ABC):
    """An INT8 GEMM engine with ABFT statistics; use as a context manager or call close()."""

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
        """Every call that reaches the device starts here; reading clock_mhz, info() or policy does not."""
        if self._closed:
            raise AcceleratorClosedError(f"{self.name} accelerator is closed")

    def gemm(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Y = X W with x (M, K) int8 and w (K, N) int8 -> (M, N) int32; statistics in last_stats.

        K must be at most tiling.MAX_K = 131071, the largest K whose INT32 sums cannot wrap
        (131071 * 2^14 < 2^31); a larger K raises InputError rather than return a wrapped sum that
        no checksum flags.
        """
        self._check_open()
        validate_operands(x, w)
        y, stats = self._gemm(np.ascontiguousarray(x), np.ascontiguousarray(w))
        self.last_stats = stats
        return y

    @abstractmethod
    def _gemm(self, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, GemmStats]: ...

    def set_policy(self, policy: PolicyConfig) -> None:
        """Program the statistics unit's recover policy and thresholds."""
        self._check_open()
        self.policy = policy

    @abstractmethod
    def set_clock(self, mhz: float, *, force: bool = False) -> float:
        """Set the array clock; returns the frequency really applied. Implementations call _check_open() first."""

    @property
    @abstractmethod
    def clock_mhz(self) -> float: ...

    def info(self) -> dict:
        return {"backend": self.name, "array_n": self.array_n, "clock_mhz": self.clock_mhz}

    def close(self) -> None:
        """Release the device; later calls raise AcceleratorClosedError, a second close does nothing."""
        self._closed = True

    def __enter__(self) -> Accelerator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
