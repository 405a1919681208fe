"""Fit a device profile to measured per-bit error rates: t_base, tau and variation sigma (`calibrate`),
or a die's process factor and temperature coefficient from sweeps at two or more junction
temperatures (`calibrate_die`).

The timing model makes output (m, j) depend only on the slack L of PE (m % n, j % n). So one
twin run per L value with every PE at that L tabulates, for each PE, the wrong bits its outputs
would show at that L; any candidate profile's per-bit rates at any clock are then a table
lookup through its slack map, exact with respect to the twin and cheap enough for a dense
grid search. The objective is piecewise constant (L is an integer), hence a shrinking grid
rather than a gradient method. The per-PE variation draw is the one of `seed`: on the sim it is
the hardware's own; on a board it stands for an unknown draw and sigma is fitted in distribution.

`calibrate` predicts with the profile's default die (the slow corner's process and temperature at
the nominal supply), so on a faster die or away from the sign-off temperature the fitted t_base and
tau absorb the die's factor. `calibrate_die` keeps t_base, tau and sigma and fits, at each junction
temperature, the one delay factor all PEs of the die share (process x temperature factor, the
voltage factor being known); a straight line through those factors over temperature gives the
process factor (its value at the profile's sign-off temperature) and the temperature coefficient
(its slope over that value), docs/timing-error-model.md.
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

    def header(self) -> str:
        return (f"t_base, tau and variation_sigma fitted to measured per-bit\n# error rates at "
                f"{', '.join(f'{c:g}' for c in self.clocks_mhz)} MHz; mean squared log10-rate "
                f"error {self.loss_before:.4g} -> {self.loss_after:.4g}.\n")


@dataclass
class _Fit:
    table: SlackTable
    points: Sequence[SweepPoint]
    seed: int

    @property
    def floor(self) -> float:
        return 0.5 / self.table.elements

    def predict(self, profile: DeviceProfile, process: float = 1.0) -> list[np.ndarray]:
        return [self.table.bit_rates(slack_table(profile, p.applied_mhz, self.table.array_n, self.seed,
                                                 process=process))
                for p in self.points]

    def loss(self, profile: DeviceProfile, process: float = 1.0) -> float:
        return float(np.mean([log_rate_loss(r, p.bit_error_rates, self.floor)
                              for r, p in zip(self.predict(profile, process), self.points, strict=True)]))

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


@dataclass(frozen=True)
class TemperatureSweep:
    """Per-bit error rates of one die measured at one junction temperature (read off the die)."""

    tj_c: float
    points: Sequence[SweepPoint]


@dataclass
class DieCalibration:
    """A die's process factor and temperature coefficient, fitted from sweeps at several junction temperatures.

    fitted is the start profile describing this one die: its process range pinned to the fitted
    factor, its temperature coefficient the fitted one.
    """

    start: DeviceProfile
    fitted: DeviceProfile
    temperatures_c: list[float]
    scales: list[float]  # per temperature: the delay factor the die's PEs share (process x temperature)
    losses: list[float]  # per temperature: mean squared log10-rate error at that factor
    clocks_mhz: list[float]

    @property
    def process_factor(self) -> float:
        return self.fitted.process_factor_max

    @property
    def delay_temp_coeff_per_c(self) -> float:
        return self.fitted.delay_temp_coeff_per_c

    def header(self) -> str:
        at = ", ".join(f"{s:.5f} at {t:g} C" for t, s in zip(self.temperatures_c, self.scales, strict=True))
        return (f"this die's process factor and temperature coefficient\n# fitted to per-bit error "
                f"rates at {', '.join(f'{c:g}' for c in self.clocks_mhz)} MHz; shared delay factors {at}.\n")


# The shared delay factor is searched on [0.5, 1.5] (a die faster than any process spread, to one
# far outside the rated range), then 4 times in a window of 21 points around the best plateau.
_SCALE_RANGE = (0.5, 1.5)


def _die_scale(fit: _Fit, profile: DeviceProfile) -> tuple[float, float]:
    """The shared delay factor that best explains one temperature's sweep, and its loss.

    The loss is piecewise constant (the L tables step): the estimate is the middle of the best plateau
    of the finest grid.
    """
    def plateau(grid: np.ndarray) -> tuple[np.ndarray, float]:
        losses = np.array([fit.loss(profile, float(s)) for s in grid])
        return np.flatnonzero(losses == losses.min()), float(losses.min())

    grid = np.linspace(*_SCALE_RANGE, 51)
    best, loss = plateau(grid)
    for _ in range(4):
        step = grid[1] - grid[0]
        grid = np.linspace(max(grid[best[0]] - step, 1e-3), grid[best[-1]] + step, 21)
        best, loss = plateau(grid)
    return float(grid[(best[0] + best[-1]) // 2]), loss


def calibrate_die(start: DeviceProfile | str, workload: Sequence[Gemm], sweeps: Sequence[TemperatureSweep], *,
                  array_n: int = 8, seed: int = 0) -> DieCalibration:
    """Fit the process factor and the temperature coefficient of die `seed` from sweeps at >= 2 junction temperatures.

    t_base, tau, sigma and the voltage law are the start profile's; the sweeps ran at its nominal supply.
    """
    if len({s.tj_c for s in sweeps}) < 2:
        raise InputError("a die calibration needs sweeps at 2 or more distinct junction temperatures")
    start = load_profile(start)
    table = slack_response(workload, array_n)
    temperatures, scales, losses = [], [], []
    for sweep in sweeps:
        if not any(p.elements_err for p in sweep.points):
            raise InputError(f"no errors at any clock at {sweep.tj_c:g} C: the die's delay is not measured there; "
                             "sweep clocks above its first errors")
        # the fitted factor is the die's shared delay relative to the slow corner at the nominal supply
        scale, loss = _die_scale(_Fit(table, sweep.points, seed), start)
        temperatures.append(float(sweep.tj_c))
        scales.append(scale)
        losses.append(loss)
    slope, intercept = np.polyfit(temperatures, scales, 1)
    signoff = start.tj_min_c if slope < 0 else start.tj_max_c
    process = float(intercept + slope * signoff)
    if not 0 < process <= 1:
        raise InputError(f"the die's fitted process factor {process:.4f} lies outside (0, 1]: slower than the "
                         f"profile's slow corner, so {start.name}'s t_base and tau do not describe it "
                         "(fit them first with calibrate without junction temperatures)")
    fitted = dataclasses.replace(start, delay_temp_coeff_per_c=float(slope) / process,
                                 process_factor_min=process, process_factor_max=process)
    clocks = sorted({p.applied_mhz for s in sweeps for p in s.points})
    return DieCalibration(start, fitted, temperatures, scales, losses, clocks)


def write_profile(calibration: Calibration | DieCalibration, path: Path, name: str) -> DeviceProfile:
    """The fitted profile as a versioned YAML (schema of device_profiles/*.yaml), validated by loading it back."""
    fitted = dataclasses.replace(calibration.fitted, name=name)
    fields = {"schema_version": fitted.schema_version, "name": fitted.name, "device": fitted.device,
              **{f.name: getattr(fitted, f.name) for f in dataclasses.fields(fitted)
                 if f.name not in ("name", "device", "schema_version")}}
    fields["t_base_ns"] = round(fields["t_base_ns"], 5)
    fields["tau_ns_per_bit"] = round(fields["tau_ns_per_bit"], 6)
    fields["variation_sigma"] = round(fields["variation_sigma"], 5)
    header = (f"# Calibrated from {calibration.start.name} by `realm-hil calibrate` on "
              f"{datetime.date.today().isoformat()}: {calibration.header()}")
    atomic_write_text(path, header + yaml.safe_dump(fields, sort_keys=False))
    return load_profile(path)
