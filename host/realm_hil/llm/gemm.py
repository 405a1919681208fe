"""The integer GEMM seam: every INT8 GEMM of a quantized model passes through a `GemmRouter`.

Selected GEMMs go, with their site, to a GEMM engine with the accelerator's interface
(`gemm(x, w, site=)` on numpy int8, returning a GemmResult; `name`), then through an optional fault
hook on the raw INT32 result, and are logged with their statistics; the rest run on torch._int_mm,
the exact integer reference (on the CPU it accepts any shape; the M > 16 and multiple-of-8 rules
apply to CUDA only).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from realm_hil.gemm_call import GemmResult, GemmSite
from realm_hil.llm.selection import Selection
from realm_hil.stats import GemmStats


class IntGemm(Protocol):
    name: str

    def gemm(self, x: np.ndarray, w: np.ndarray, *, site: GemmSite | None = None) -> GemmResult:
        """(M, K) int8 @ (K, N) int8 -> (M, N) int32 and its statistics."""
        ...


# Applied to the INT32 result before dequantization; may modify it in place; returns the result.
FaultHook = Callable[[np.ndarray, GemmSite], np.ndarray]


class TorchIntMM:
    """Error-free backend with the accelerator interface, for software fault models."""

    name = "torch._int_mm"

    def gemm(self, x: np.ndarray, w: np.ndarray, *, site: GemmSite | None = None) -> GemmResult:
        return GemmResult(torch._int_mm(torch.from_numpy(x), torch.from_numpy(w)).numpy(), None)


@dataclass(frozen=True)
class GemmRecord:
    site: GemmSite
    shape: tuple[int, int, int]  # (M, K, N)
    stats: GemmStats | None  # what the engine reported for this GEMM (None from software engines)


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
        result = self.backend.gemm(x.numpy(), w.numpy(), site=site)
        acc = result.y if self.fault is None else self.fault(result.y, site)
        # the statistics describe what the engine computed, before any fault hook
        self.log.append(GemmRecord(site, (x.shape[0], x.shape[1], w.shape[1]), result.stats))
        return torch.from_numpy(acc)
