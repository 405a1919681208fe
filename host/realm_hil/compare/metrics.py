"""What an error model gets right or wrong: rates, bit positions, magnitudes, tiles and sites.

Distances between a model and the hardware:
- Wasserstein and Kolmogorov-Smirnov on log2|error| of the wrong elements (how large errors are),
- Jensen-Shannon (base 2, in [0, 1]) on the per-bit error rates normalised to a distribution
  (which bits go wrong, independent of how often).
A distance is NaN when exactly one side has no errors: the shape of an empty set is undefined,
and the rate columns already show that difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp, wasserstein_distance

from ..sweep import BITS, bit_error_counts
from ..workload import Gemm
from .models import Run


@dataclass
class SiteErrors:
    label: str
    layer: int | None
    component: str
    elements: int
    errors: int

    @property
    def rate(self) -> float:
        return self.errors / self.elements


@dataclass
class ErrorProfile:
    """Error signature of one model at one clock over the whole workload."""

    model: str
    mhz: float
    elements: int
    elements_err: int
    bit_errors: np.ndarray  # (32,) wrong bits per position
    log2_error: np.ndarray  # log2 |y - exact| of every wrong element (as 64-bit difference)
    tile_msd: np.ndarray
    tile_freq: np.ndarray
    sites: list[SiteErrors]

    @property
    def element_error_rate(self) -> float:
        return self.elements_err / self.elements

    @property
    def bit_error_rates(self) -> np.ndarray:
        return self.bit_errors / self.elements


def error_profile(run: Run, workload: Sequence[Gemm], exact: Sequence[np.ndarray]) -> ErrorProfile:
    bits = np.zeros(BITS, dtype=np.int64)
    log2_error, sites = [], []
    for y, ref, gemm in zip(run.outputs, exact, workload, strict=True):
        bits += bit_error_counts(y, ref)
        diff = y.astype(np.int64) - ref.astype(np.int64)
        wrong = diff[diff != 0]
        log2_error.append(np.log2(np.abs(wrong)))
        sites.append(SiteErrors(gemm.label, gemm.layer, gemm.component, y.size, wrong.size))
    return ErrorProfile(
        model=run.model,
        mhz=run.mhz,
        elements=sum(s.elements for s in sites),
        elements_err=sum(s.errors for s in sites),
        bit_errors=bits,
        log2_error=np.concatenate(log2_error),
        tile_msd=np.concatenate([s.tiles.msd.astype(np.float64) for s in run.stats]),
        tile_freq=np.concatenate([s.tiles.freq.astype(np.int64) for s in run.stats]),
        sites=sites,
    )


@dataclass(frozen=True)
class Distances:
    """How far a model's error profile lies from the hardware's (0 = indistinguishable)."""

    element_rate_ratio: float  # model rate / hardware rate
    wasserstein_log2: float
    ks_log2: float
    js_bits: float

    @property
    def is_zero(self) -> bool:
        return self.wasserstein_log2 == 0 and self.ks_log2 == 0 and self.js_bits == 0


def _sample_distance(a: np.ndarray, b: np.ndarray, fn) -> float:
    if a.size == 0 and b.size == 0:
        return 0.0
    if a.size == 0 or b.size == 0:
        return math.nan
    return float(fn(a, b))


def distances(model: ErrorProfile, hardware: ErrorProfile) -> Distances:
    ratio = (model.element_error_rate / hardware.element_error_rate if hardware.elements_err
             else (1.0 if model.elements_err == 0 else math.inf))
    return Distances(
        element_rate_ratio=ratio,
        wasserstein_log2=_sample_distance(model.log2_error, hardware.log2_error, wasserstein_distance),
        ks_log2=_sample_distance(model.log2_error, hardware.log2_error, lambda a, b: ks_2samp(a, b).statistic),
        js_bits=bit_rate_js(model.bit_errors, hardware.bit_errors),
    )


def bit_rate_js(a: np.ndarray, b: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2) between two per-bit error-rate profiles, each normalised."""
    if not a.any() and not b.any():
        return 0.0
    if not a.any() or not b.any():
        return math.nan
    return float(jensenshannon(a / a.sum(), b / b.sum(), base=2))
