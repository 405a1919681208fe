"""The integer GEMM seam: every INT8 GEMM of a quantized model passes through a `GemmRouter`.

Selected GEMMs go to a backend with the accelerator interface (`gemm(x, w)` on numpy int8,
`last_stats`, `name`), then through an optional fault hook on the raw INT32 result, and are
logged; the rest run on torch._int_mm, the exact integer reference (on the CPU it accepts any
shape; the M > 16 and multiple-of-8 rules apply to CUDA only).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from realm_hil.llm.selection import Selection


class IntGemm(Protocol):
    name: str
    last_stats: Any

    def gemm(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """(M, K) int8 @ (K, N) int8 -> (M, N) int32."""
        ...


@dataclass(frozen=True)
class GemmSite:
    layer: int | None  # None for lm_head
    component: str
    stage: str


# Applied to the INT32 result before dequantization; may modify it in place; returns the result.
FaultHook = Callable[[np.ndarray, GemmSite], np.ndarray]


class TorchIntMM:
    """Error-free backend with the accelerator interface, for software fault models."""

    name = "torch._int_mm"
    last_stats = None

    def gemm(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return torch._int_mm(torch.from_numpy(x), torch.from_numpy(w)).numpy()


@dataclass(frozen=True)
class GemmRecord:
    site: GemmSite
    shape: tuple[int, int, int]  # (M, K, N)
    stats: Any  # the backend's last_stats for this GEMM (None for software backends)


@dataclass
class GemmLog:
    records: list[GemmRecord] = field(default_factory=list)

    def append(self, record: GemmRecord) -> None:
        self.records.append(record)

    def clear(self) -> None:
        self.records.clear()

    def __len__(self) -> int:
        return len(self.records)

    def shape_counts(self) -> Counter[tuple[str, tuple[int, int, int]]]:
        """How many GEMMs of each (component, (M, K, N))."""
        return Counter((r.site.component, r.shape) for r in self.records)

    def macs(self) -> int:
        return sum(m * k * n for m, k, n in (r.shape for r in self.records))


class GemmRouter:
    """Routes each INT8 GEMM by site; `backend`, `selection` and `fault` may be swapped between runs."""

    def __init__(
        self,
        backend: IntGemm | None = None,
        selection: Selection | None = None,
        fault: FaultHook | None = None,
    ):
        self.backend: IntGemm = backend if backend is not None else TorchIntMM()
        self.selection = selection if selection is not None else Selection.parse()
        self.fault = fault
        self.log = GemmLog()
        self.stage = "prefill"

    def matmul(self, layer: int | None, component: str, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """(M, K) int8 @ (K, N) int8 -> (M, N) int32, both operands C-contiguous."""
        if not self.selection.matches(layer, component, self.stage):
            return torch._int_mm(x, w)
        site = GemmSite(layer, component, self.stage)
        acc = self.backend.gemm(x.numpy(), w.numpy())
        # Read before the fault hook runs: the stats describe what the backend computed.
        stats = self.backend.last_stats
        if self.fault is not None:
            acc = self.fault(acc, site)
        self.log.append(GemmRecord(site, (x.shape[0], x.shape[1], w.shape[1]), stats))
        return torch.from_numpy(acc)
