"""GEMM workloads for sweeps and comparisons: random, or captured from a real quantized LLM."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .gemm_call import GemmResult, GemmSite
from .tiling import int32_gemm


@dataclass(frozen=True)
class Gemm:
    """One INT8 GEMM of a workload and where it came from."""

    x: np.ndarray  # (M, K) int8
    w: np.ndarray  # (K, N) int8
    label: str
    layer: int | None = None
    component: str = "random"

    @property
    def macs(self) -> int:
        return self.x.shape[0] * self.x.shape[1] * self.w.shape[1]


def random_workload(count: int = 6, m: int = 16, k: int = 576, n: int = 128, seed: int = 0) -> list[Gemm]:
    """Uniform random INT8 operands of an LLM-like shape (a pessimistic operand distribution)."""
    rng = np.random.default_rng(seed)
    return [
        Gemm(rng.integers(-128, 128, size=(m, k), dtype=np.int8),
             rng.integers(-128, 128, size=(k, n), dtype=np.int8), f"random{i}")
        for i in range(count)
    ]


class CapturingGemm:
    """An exact integer GEMM that keeps a copy of the operands it sees (a GemmRouter backend)."""

    name = "capture"

    def __init__(self, limit_rows: int | None = None, limit_cols: int | None = None) -> None:
        self.captured: list[tuple[np.ndarray, np.ndarray]] = []
        self.limit_rows = limit_rows
        self.limit_cols = limit_cols

    def gemm(self, x: np.ndarray, w: np.ndarray, *, site: GemmSite | None = None) -> GemmResult:
        self.captured.append((x[: self.limit_rows].copy(), w[:, : self.limit_cols].copy()))
        return GemmResult(int32_gemm(x, w), None)
