"""One INT8 GEMM as it passes between a model, a policy and a backend: the call, its site, its result.

A `GemmCall` is validated and planned once, where it enters the seam (Accelerator.gemm or a
ProtectedGemm), and then handed down as it is; its exact result is computed at most once and
shared by whoever needs it (a backend's statistics, error accounting, recovery).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .stats import GemmStats
from .tiling import TilePlan, int32_gemm, plan_for, validate_operands


@dataclass(frozen=True)
class GemmSite:
    """Where a GEMM sits in a model: per-layer, per-component thresholds and fault models key on it."""

    layer: int | None  # None for lm_head
    component: str
    stage: str


@dataclass(frozen=True, eq=False)
class GemmCall:
    """Y = X W for one GEMM: C-contiguous int8 operands, the tile plan and the site (None outside a model)."""

    x: np.ndarray  # (M, K) int8
    w: np.ndarray  # (K, N) int8
    plan: TilePlan
    site: GemmSite | None = None

    @classmethod
    def prepare(cls, x: np.ndarray, w: np.ndarray, array_n: int, site: GemmSite | None = None) -> GemmCall:
        """Validate the operands (InputError naming what was expected) and plan the tiles of an n x n array.

        K must be at most tiling.MAX_K = 131071, the largest K whose INT32 sums cannot wrap
        (131071 * 2^14 < 2^31); a larger K is refused rather than return a wrapped sum that no
        checksum flags.
        """
        validate_operands(x, w)
        x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
        return cls(x, w, plan_for(x, w, array_n), site)

    @cached_property
    def exact(self) -> np.ndarray:
        """The exact (M, N) int32 result, computed on first use; read-only, since every user shares it."""
        y = int32_gemm(self.x, self.w)
        y.flags.writeable = False
        return y


@dataclass(frozen=True, eq=False)
class GemmResult:
    """What a GEMM engine returns: the INT32 result and the statistics the checking logic reported for it."""

    y: np.ndarray  # (M, N) int32
    stats: GemmStats | None  # None from an engine without a statistics unit (torch._int_mm, a capture)
    # how many elements of y differ from the call's exact result, from an engine that compared them
    # anyway for its statistics (the software backends); None: not known, compare to find out
    wrong: int | None = None
