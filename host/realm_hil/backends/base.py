"""The interface every backend shares: gemm, last_stats, set_clock, policy, close."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..stats import GemmStats, PolicyConfig
from ..tiling import validate_operands


class Accelerator(ABC):
    """An INT8 GEMM engine with ABFT statistics; use as a context manager or call close()."""

    name: str = "abstract"

    def __init__(self, array_n: int) -> None:
        self.array_n = array_n
        self.last_stats: GemmStats | None = None
        self.policy = PolicyConfig()
        self._closed = False

    def gemm(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Y = X W with x (M, K) int8 and w (K, N) int8 -> (M, N) int32; statistics in last_stats."""
        if self._closed:
            raise RuntimeError(f"{self.name} accelerator is closed")
        validate_operands(x, w)
        y, stats = self._gemm(np.ascontiguousarray(x), np.ascontiguousarray(w))
        self.last_stats = stats
        return y

    @abstractmethod
    def _gemm(self, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, GemmStats]: ...

    def set_policy(self, policy: PolicyConfig) -> None:
        """Program the statistics unit's recover policy and thresholds."""
        self.policy = policy

    @abstractmethod
    def set_clock(self, mhz: float, *, force: bool = False) -> float:
        """Set the array clock; returns the frequency really applied."""

    @property
    @abstractmethod
    def clock_mhz(self) -> float: ...

    def info(self) -> dict:
        return {"backend": self.name, "array_n": self.array_n, "clock_mhz": self.clock_mhz}

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> Accelerator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
