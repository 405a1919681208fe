"""Fit a device profile's t_base, tau and variation sigma to measured per-bit error rates.

The timing model makes output (m, j) depend only on the slack L of PE (m % n, j % n). So one
twin run per L value with every PE at that L tabulates, for each PE, the wrong bits its outputs
would show at that L; any candidate profile's per-bit rates at any clock are then a table
lookup through its slack map, exact with respect to the twin and cheap enough for a dense
grid search. The objective is piecewise constant (L is an integer), hence a shrinking grid
rather than a gradient method. The per-PE variation draw is the one of `seed`: on the sim it is
the hardware's own; on a board it stands for an unknown draw and sigma is fitted in distribution.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ..errors import InputError
from ..results import atomic_write_text
from ..sweep import BITS, SweepPoint
from ..timing.device_profile import DeviceProfile, load_profile
from ..timing.emulation import L_EXACT
from ..timing.slack import slack_table
from ..timing.twin_kernel import timed_gemm
from ..workload import Gemm
from .metrics import bit_rate_js

L_VALUES = np.arange(-1, L_EXACT + 1)


@dataclass
class SlackTable:
    """Wrong-bit counts (L, n, n, 32) per uniform slack L and PE, over one workload."""

    counts: np.ndarray
    elements: int
    array_n: int

    def bit_rates(self, slack: np.ndarray) -> np.ndarray:
        rows, cols = np.indices(slack.shape)
        return self.counts[slack.astype(np.int64) + 1, rows, cols].sum(axis=(0, 1)) / self.elements


def slack_response(workload: Sequence[Gemm], array_n: int) -> SlackTable:
    counts = np.zeros((len(L_VALUES), array_n, array_n, BITS), dtype=np.int64)
    elements = 0
    shift = np.arange(BITS, dtype=np.uint32)
    for gemm in workload:
        exact = timed_gemm(gemm.x, gemm.w, np.full((array_n, array_n), L_EXACT, np.int8), array_n)
        m, n = exact.shape
        pe = (np.arange(m)[:, None] % array_n) * array_n + np.arange(n)[None, :] % array_n
        elements += exact.size
        for i, slack in enumerate(L_VALUES):
            y = timed_gemm(gemm.x, gemm.w, np.full((array_n, array_n), slack, np.int8), array_n)
            wrong = ((y.view(np.uint32) ^ exact.view(np.uint32)).reshape(-1, 1) >> shift) & 1
            per_pe = np.zeros((array_n * array_n, BITS), dtype=np.int64)
            np.add.at(per_pe, pe.ravel(), wrong.astype(np.int64))
            counts[i] += per_pe.reshape(array_n, array_n, BITS)
    return SlackTable(counts, elements, array_n)


def log_rate_loss(predicted: np.ndarray, measured: np.ndarray, floor: float) -> float:
    """Mean squared difference of log10 bit error rates; `floor` (half a count) keeps zeros finite."""
    return float(np.mean((np.log10(predicted + floor) - np.log10(measured + floor)) ** 2))


@dataclass
class Calibration:
    start: DeviceProfile
    fitted: DeviceProfile
    clocks_mhz: list[float]
    loss_before: float
    loss_after: float
    js_before: list[float]  # per clock, Jensen-Shannon of per-bit rates against the measurement
    js_after: list[float]


@dataclass
class _Fit:
    table: SlackTable
    points: Sequence[SweepPoint]
    seed: int

    @property
    def floor(self) -> float:
        return 0.5 / self.table.elements

    def predict(self, profile: DeviceProfile) -> list[np.ndarray]:
        return [self.table.bit_rates(slack_table(profile, p.applied_mhz, self.table.array_n, self.seed))
                for p in self.points]

    def loss(self, profile: DeviceProfile) -> float:
        return float(np.mean([log_rate_loss(r, p.bit_error_rates, self.floor)
                              for r, p in zip(self.predict(profile), self.points, strict=True)]))

    def js(self, profile: DeviceProfile) -> list[float]:
        return [bit_rate_js(r, p.bit_error_rates) for r, p in zip(self.predict(profile), self.points, strict=True)]


def calibrate(
    start: DeviceProfile | str,
    workload: Sequence[Gemm],
    points: Sequence[SweepPoint],
    *,
    array_n: int = 8,
    seed: int = 0,
    rounds: int = 5,
    steps: int = 21,
) -> Calibration:
    """Fit t_base, tau and sigma of `start` to per-bit error rates measured on `workload` (>= 3 clocks).

    Each round searches a steps^2 grid of (t_base, tau) at a few sigmas around the current best,
    then halves the window; the first window is t_base +-20 %, tau x0.5..x2, sigma 0..3x.
    """
    if len({p.applied_mhz for p in points}) < 3:
        raise InputError("calibration needs measurements at 3 or more distinct clocks")
    start = load_profile(start)
    fit = _Fit(slack_response(workload, array_n), points, seed)
    best, best_loss = start, fit.loss(start)
    half = np.array([0.2 * start.t_base_ns, 0.75 * start.tau_ns_per_bit, 1.5 * max(start.variation_sigma, 0.01)])
    for _ in range(rounds):
        center = np.array([best.t_base_ns, best.tau_ns_per_bit, best.variation_sigma])
        grids = [np.linspace(c - h, c + h, s) for c, h, s in zip(center, half, (steps, steps, 7), strict=True)]
        for t_base in grids[0][grids[0] > 0]:
            for tau in grids[1][grids[1] > 0]:
                for sigma in grids[2][grids[2] >= 0]:
                    candidate = dataclasses.replace(start, t_base_ns=float(t_base), tau_ns_per_bit=float(tau),
                                                    variation_sigma=float(sigma))
                    # a profile that errs at its rated clock is not a shippable part (timing/slack.py)
                    if candidate.worst_path_ns > candidate.nominal_period_ns:
                        continue
                    loss = fit.loss(candidate)
                    if loss < best_loss:
                        best, best_loss = candidate, loss
        half = half / 2
    return Calibration(start, best, [p.applied_mhz for p in points], fit.loss(start), best_loss,
                       fit.js(start), fit.js(best))


def write_profile(calibration: Calibration, path: Path, name: str) -> DeviceProfile:
    """The fitted profile as a versioned YAML (schema of device_profiles/*.yaml), validated by loading it back."""
    fitted = dataclasses.replace(calibration.fitted, name=name)
    fields = {"schema_version": fitted.schema_version, "name": fitted.name, "device": fitted.device,
              **{f.name: getattr(fitted, f.name) for f in dataclasses.fields(fitted)
                 if f.name not in ("name", "device", "schema_version")}}
    fields["t_base_ns"] = round(fields["t_base_ns"], 5)
    fields["tau_ns_per_bit"] = round(fields["tau_ns_per_bit"], 6)
    fields["variation_sigma"] = round(fields["variation_sigma"], 5)
    header = (
        f"# Calibrated from {calibration.start.name} by `realm-hil calibrate` on "
        f"{datetime.date.today().isoformat()}: t_base, tau and variation_sigma fitted to measured per-bit\n"
        f"# error rates at {', '.join(f'{c:g}' for c in calibration.clocks_mhz)} MHz; mean squared log10-rate "
        f"error {calibration.loss_before:.4g} -> {calibration.loss_after:.4g}.\n"
    )
    atomic_write_text(path, header + yaml.safe_dump(fields, sort_keys=False))
    return load_profile(path)
