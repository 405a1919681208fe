"""Software fault models for the GemmRouter's fault hook."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from realm_hil.errors import InputError
from realm_hil.llm.gemm import GemmSite


@dataclass
class BitFlip:
    """The paper's model: each INT32 output element independently has one fixed bit XOR-flipped.

    Draws the number of faulty elements from a Binomial, then their positions, from one seeded
    generator: cost scales with the number of faults, not the number of elements, and rates are
    exact (no float32 probability grid).
    """

    rate: float
    bit: int = 30
    seed: int = 0
    injected: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise InputError(f"rate must be in [0, 1], got {self.rate}")
        if not 0 <= self.bit <= 31:
            raise InputError(f"bit must be in 0..31, got {self.bit}")
        self._rng = np.random.default_rng(self.seed)
        self._mask = np.array(1 << self.bit, dtype=np.uint32).view(np.int32)

    def __call__(self, acc: np.ndarray, site: GemmSite) -> np.ndarray:
        count = int(self._rng.binomial(acc.size, self.rate))
        if count == 0:
            return acc
        acc = np.require(acc, requirements=["C", "W"])
        flat = acc.reshape(-1)
        flat[self._rng.choice(acc.size, size=count, replace=False)] ^= self._mask
        self.injected += count
        return acc
