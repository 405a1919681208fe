"""The critical-region boundary of a component class and the per-tile rule that enforces it.

The derivation (the cheapest safe line, its logistic tie-break, the translation alpha = 1 - a,
beta = -b, the replay that sets the beta margin, the frequency floor and GEMM gate) is in
docs/abft-statistics.md, "Where the thresholds come from: the critical region".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from realm_hil.abft.abft_profile import Boundary
from realm_hil.abft.characterization_sweep import PointResult, SumDeviation
from realm_hil.abft.component_classes import Classification
from realm_hil.abft.policies import gated
from realm_hil.errors import InputError
from realm_hil.stats import PolicyConfig, tile_stats_sparse

# Steepest boundary the Q8.8 alpha = 1 - a can express.
MAX_SLOPE = 128.0
# slopes the conservative line search tries (the logistic direction is always among them)
SLOPE_STEP = 0.01
SEARCH_SLOPE = 16.0
BETA_STEP = 0.25
MAX_BETA_MARGIN = 16.0


@dataclass(frozen=True)
class BoundaryFit:
    boundary: Boundary
    points: int
    critical: int
    benign_on_critical_side: int  # benign points the (shifted) line calls critical
    shift: float  # how far the logistic line was raised to cover every critical point (0: another slope won)
    floor: int = 0  # log2 freq below which nothing is critical (0: no floor)

    def is_critical(self, log2_msd: float, log2_freq: float) -> bool:
        return (
            log2_freq >= self.floor
            and log2_freq <= self.boundary.slope * log2_msd + self.boundary.intercept + 1e-9
        )


def fit_boundary(
    log2_msd: Sequence[float], log2_freq: Sequence[float], critical: Sequence[bool], l2: float = 1e-3
) -> BoundaryFit:
    """Line log2 freq = a log2 MSD + b with the critical points on or below it."""
    x, y = np.asarray(log2_msd, float), np.asarray(log2_freq, float)
    label = np.asarray(critical, bool)
    if x.size == 0 or not (x.size == y.size == label.size):
        raise ValueError("need equally long, non-empty log2_msd, log2_freq and critical sequences")
    if not label.any():
        raise ValueError(
            "no critical point: the grid never reaches the critical region, extend it to larger MSD"
        )
    if label.all():
        raise InputError("every point is critical: extend the grid to smaller MSD")
    wx, wy, c = _logistic(np.column_stack([x, y]), label, l2)
    if wy < 0 and abs(wx / wy) <= MAX_SLOPE:
        preferred, logistic_intercept = -wx / wy, -c / wy
    else:  # freq does not separate the classes: the steepest line the hardware can express
        preferred, logistic_intercept = MAX_SLOPE, -math.inf
    candidates = np.unique(np.append(np.round(np.arange(SLOPE_STEP, SEARCH_SLOPE, SLOPE_STEP), 6), preferred))
    residuals = y[None, :] - candidates[:, None] * x[None, :]
    intercepts = residuals[:, label].max(axis=1)
    flagged = (~label[None, :] & (residuals <= intercepts[:, None] + 1e-9)).sum(axis=1)
    cheapest = np.flatnonzero(flagged == flagged.min())
    best = int(cheapest[np.argmin(np.abs(candidates[cheapest] - preferred))])
    slope, intercept = float(candidates[best]), float(intercepts[best])
    benign_flagged = int(flagged[best])
    raised = slope == preferred and math.isfinite(logistic_intercept)
    shift = max(0.0, intercept - logistic_intercept) if raised else 0.0
    return BoundaryFit(
        Boundary(float(slope), float(intercept)), int(x.size), int(label.sum()), benign_flagged, shift
    )


def _logistic(features: np.ndarray, label: np.ndarray, l2: float) -> np.ndarray:
    """Weights (w_x, w_y, c) in the original units, fitted by Newton's method on standardized features."""
    mean, std = features.mean(axis=0), features.std(axis=0)
    std[std == 0] = 1.0
    z = np.column_stack([(features - mean) / std, np.ones(len(features))])
    t = label.astype(float)
    w = np.zeros(z.shape[1])
    penalty = l2 * len(z) * np.diag([1.0, 1.0, 0.0])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -50, 50)))
        grad = z.T @ (p - t) + penalty @ w
        hess = z.T @ (z * (p * (1 - p))[:, None]) + penalty + 1e-9 * np.eye(3)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    scaled = w[:2] / std
    return np.array([scaled[0], scaled[1], w[2] - scaled @ mean])


@dataclass(frozen=True)
class TileRule:
    alpha: float
    beta: float
    freq_min: int
    beta_margin: float  # how far beta was lowered below -b so that spread-out critical errors are caught
    recall: float  # critical points whose residual errors, after recovering flagged tiles, are benign
    benign_flag_rate: float  # benign points with at least one tile recovered (needless recomputation)
    points: int
    gemm_freq_min: int = 1  # the GEMM gate, 2^floor

    def policy(self) -> PolicyConfig:
        return PolicyConfig.from_floats("statistical", self.alpha, self.beta, freq_min=self.freq_min)


def tile_alpha_beta(boundary: Boundary) -> tuple[float, float]:
    """alpha = 1 - a, beta = -b (docs/abft-statistics.md, "From the GEMM boundary to the per-tile rule")."""
    return 1.0 - boundary.slope, -boundary.intercept


def translate(
    fit: BoundaryFit,
    points: Sequence[PointResult],
    shapes: dict[str, tuple[int, int]],
    array_n: int,
    seed: int = 0,
) -> TileRule:
    """Per-tile rule for a class, validated by replaying its points on the components' GEMM shapes.

    `shapes`: component -> (M, N) of its GEMM output in the characterization (prefill window).
    """
    alpha, beta0 = tile_alpha_beta(fit.boundary)
    alpha = min(max(alpha, -128.0), 127.99)
    gate = 1 << fit.floor
    patterns = [(p, _tile_deviations(p, shapes[p.component], array_n, seed)) for p in points]
    margin = 0.0
    while True:
        beta = min(max(beta0 - margin, -128.0), 127.99)
        policy = PolicyConfig.from_floats("statistical", alpha, beta, freq_min=1)
        outcomes = [_replay(d, e, policy, fit, gate) for _, (d, e) in patterns]
        crit = [ok for (p, _), (ok, _) in zip(patterns, outcomes, strict=True) if p.critical]
        if all(crit) or margin >= MAX_BETA_MARGIN:
            break
        margin += BETA_STEP
    benign = [flagged for (p, _), (_, flagged) in zip(patterns, outcomes, strict=True) if not p.critical]
    recall = float(np.mean(crit)) if crit else 1.0
    rate = float(np.mean(benign)) if benign else 0.0
    return TileRule(
        round(alpha * 256) / 256, round(beta * 256) / 256, 1, margin, recall, rate, len(points), gate
    )


def _tile_deviations(
    p: PointResult, shape: tuple[int, int], n: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Column and row deviations (tiles, n) of one GEMM hit by the point's errors."""
    rows, cols = shape
    hook = SumDeviation(1 << p.log2_msd, 1 << p.log2_freq, seed=[seed, p.log2_msd, p.log2_freq, rows, cols])
    positions, values = hook.errors(rows * cols)
    r, c = np.divmod(positions, cols)
    tiles_n = math.ceil(cols / n)
    tile = (r // n) * tiles_n + c // n
    count = math.ceil(rows / n) * tiles_n
    d = np.zeros((count, n), np.int64)
    e = np.zeros((count, n), np.int64)
    np.add.at(d, (tile, c % n), values)
    np.add.at(e, (tile, r % n), values)
    return _wrap(d), _wrap(e)


def _wrap(v: np.ndarray) -> np.ndarray:
    return ((v + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def _replay(
    d: np.ndarray, e: np.ndarray, policy: PolicyConfig, fit: BoundaryFit, gate: int
) -> tuple[bool, bool]:
    """(errors left after recovering flagged tiles are benign, any tile recovered)."""
    stats = tile_stats_sparse(d, e, policy)
    recover = gated(stats.recover, int(stats.freq_eff.sum()), gate)
    left = ~recover
    msd = int(stats.msd[left].astype(object).sum())
    freq = int(stats.freq[left].sum())
    benign = msd == 0 or freq == 0 or not fit.is_critical(math.log2(msd), math.log2(freq))
    return benign, bool(recover.any())


@dataclass(frozen=True)
class ClassFit:
    name: str
    components: tuple[str, ...]
    fit: BoundaryFit | None  # None: the grid's points are all benign or all critical (`always`)
    rule: TileRule | None
    always: bool = False  # every point critical, even the grid's smallest errors: recover on any deviation


def fit_classes(
    points: Sequence[PointResult],
    classification: Classification,
    shapes: dict[str, tuple[int, int]],
    array_n: int,
    seed: int = 0,
) -> dict[str, ClassFit]:
    """Boundary and per-tile rule of each class from the points of its measured components."""
    out = {}
    for name, members in classification.classes.items():
        mine = [p for p in points if p.component in members]
        critical = [p.critical for p in mine]
        if not any(critical) or all(critical):
            out[name] = ClassFit(name, members, None, None, always=any(critical))
            continue
        floor = min(p.log2_freq for p in mine if p.critical)
        above = [p for p in mine if p.log2_freq >= floor]
        if all(p.critical for p in above):
            # above the floor every error counts: a line over the whole grid, the gate does the work
            top = max(p.log2_freq for p in above)
            fit = BoundaryFit(Boundary(0.0, float(top)), len(above), len(above), 0, 0.0, floor)
        else:
            fit = replace(
                fit_boundary(
                    [p.log2_msd for p in above], [p.log2_freq for p in above], [p.critical for p in above]
                ),
                floor=floor,
            )
        out[name] = ClassFit(name, members, fit, translate(fit, mine, shapes, array_n, seed))
    return out
