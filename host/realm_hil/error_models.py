"""The software bit-flip error models, sampled one way wherever they run (`run` and `compare`).

- `RealmModel`: ReaLM's assumption, each INT32 output element independently has one fixed bit
  flipped at one rate.
- `PerBitModel`: each of the 32 bit positions flips independently at its own rate.

Sampling, the same for both: for each bit position with a nonzero rate, in ascending order, the
number of flipped elements is drawn from Binomial(size, rate), then that many distinct positions
uniformly. Given the count every subset of that size is equally likely, so this is exactly an
independent Bernoulli(rate) flip per element; it costs what the faults cost rather than what the
elements cost, and uses the rate as given, without a grid of uniform draws. One generator feeds
every GEMM in order, so one seed and the same GEMM shapes give the same faults in both commands.

`SeededFaults` is a model as the GemmRouter's fault hook, owning its generator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import InputError
from .llm.gemm import GemmSite
from .sweep import BITS


def _flip(flat: np.ndarray, bit: int, rate: float, rng: np.random.Generator) -> int:
    """XOR `bit` into each element of `flat` (int32, in place) with probability `rate`; returns the count."""
    count = int(rng.binomial(flat.size, rate))
    if count:
        flat[rng.choice(flat.size, size=count, replace=False)] ^= np.array(1 << bit, np.uint32).view(np.int32)
    return count


def _check_rate(rate: float, what: str) -> None:
    if not 0.0 <= rate <= 1.0:
        raise InputError(f"{what} must be in [0, 1], got {rate}")


@dataclass(frozen=True)
class RealmModel:
    """ReaLM's assumption: each output element independently has bit `bit` flipped at rate `rate`."""

    rate: float
    bit: int = 30
    name: str = "realm"

    def __post_init__(self) -> None:
        _check_rate(self.rate, "rate")
        if not 0 <= self.bit < BITS:
            raise InputError(f"bit must be in 0..{BITS - 1}, got {self.bit}")

    def flip(self, flat: np.ndarray, rng: np.random.Generator) -> int:
        """Flip in place (flat int32 array); returns the number of bits flipped."""
        return _flip(flat, self.bit, self.rate, rng)

    def corrupt(self, exact: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = exact.copy()
        self.flip(out.reshape(-1), rng)
        return out


@dataclass(frozen=True)
class PerBitModel:
    """Independent flips per bit position, each at its own rate (32 rates, bit 0 = LSB)."""

    rates: np.ndarray
    name: str = "per-bit"

    def __post_init__(self) -> None:
        if np.shape(self.rates) != (BITS,):
            raise InputError(f"need {BITS} per-bit rates, got shape {np.shape(self.rates)}")
        for rate in self.rates:
            _check_rate(float(rate), "every per-bit rate")

    def flip(self, flat: np.ndarray, rng: np.random.Generator) -> int:
        return sum(_flip(flat, bit, float(rate), rng) for bit, rate in enumerate(self.rates) if rate > 0)

    def corrupt(self, exact: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = exact.copy()
        self.flip(out.reshape(-1), rng)
        return out


@dataclass
class SeededFaults:
    """A model as a fault hook `(acc, site) -> acc`: one generator, seeded once, over every GEMM in order."""

    model: RealmModel | PerBitModel
    seed: int | np.random.SeedSequence = 0
    injected: int = field(default=0, init=False)  # bits flipped so far

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def __call__(self, acc: np.ndarray, site: GemmSite) -> np.ndarray:
        acc = np.require(acc, requirements=["C", "W"])
        self.injected += self.model.flip(acc.reshape(-1), self._rng)
        return acc
