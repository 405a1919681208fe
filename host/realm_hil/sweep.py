"""Error rate per output element and per bit position against the array clock."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .accelerator import Accelerator
from .errors import InputError
from .results import atomic_write_text
from .tiling import int32_gemm, pad_to_tiles
from .workload import Gemm

BITS = 32


@dataclass
class SweepPoint:
    requested_mhz: float
    applied_mhz: float
    elements: int
    elements_err: int
    tiles: int
    tiles_err: int  # tiles the checksums flagged (nonzero deviation)
    bit_errors: np.ndarray  # (32,) count of wrong bits per position over all elements
    tiles_false_alarm: int = 0  # flagged, yet every result exact
    tiles_missed: int = 0  # some result wrong, yet not flagged

    @property
    def element_error_rate(self) -> float:
        return self.elements_err / self.elements

    @property
    def tile_error_rate(self) -> float:
        return self.tiles_err / self.tiles

    @property
    def false_alarm_rate(self) -> float:
        return self.tiles_false_alarm / self.tiles

    @property
    def missed_rate(self) -> float:
        return self.tiles_missed / self.tiles

    @property
    def bit_error_rates(self) -> np.ndarray:
        return self.bit_errors / self.elements


def clock_range(nominal: float, start: float | None = None, stop: float | None = None, steps: int = 16) -> list[float]:
    """`steps` evenly spaced clocks in MHz from start [nominal] to stop [1.5 x nominal], both included."""
    start = nominal if start is None else start
    stop = 1.5 * nominal if stop is None else stop
    if not (math.isfinite(stop) and 0 < start < stop):
        raise InputError(f"a clock sweep needs 0 < start < stop (finite MHz), got start {start:g}, stop {stop:g}")
    if steps < 2:
        raise InputError(f"a clock sweep needs at least 2 steps, got {steps}")
    return [float(c) for c in np.linspace(start, stop, steps)]


def bit_error_counts(y: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """Wrong bits per position (0 = LSB) over all elements of y."""
    diff = (y.view(np.uint32) ^ exact.view(np.uint32)).ravel()
    return np.array([np.count_nonzero((diff >> np.uint32(b)) & np.uint32(1)) for b in range(BITS)])


def wrong_tiles(y: np.ndarray, exact: np.ndarray, array_n: int) -> np.ndarray:
    """Per tile, in row-major tile order: whether any result of the tile differs from the exact one."""
    wrong = pad_to_tiles(y != exact, array_n)
    tiles_m, tiles_n = wrong.shape[0] // array_n, wrong.shape[1] // array_n
    return wrong.reshape(tiles_m, array_n, tiles_n, array_n).any(axis=(1, 3)).ravel()


def sweep_clock(
    acc: Accelerator,
    workload: Sequence[Gemm],
    clocks_mhz: Sequence[float],
    progress: Callable[[int], None] | None = None,
) -> list[SweepPoint]:
    """Run every GEMM of the workload at every clock on `acc`; the clock is restored afterwards."""
    exact = [int32_gemm(g.x, g.w) for g in workload]
    nominal = acc.clock_mhz
    points = []
    try:
        for mhz in clocks_mhz:
            applied = acc.set_clock(mhz)
            bits = np.zeros(BITS, dtype=np.int64)
            elements = elements_err = tiles = tiles_err = false_alarms = missed = 0
            for gemm, ref in zip(workload, exact, strict=True):
                result = acc.gemm(gemm.x, gemm.w)
                y, stats = result.y, result.stats
                bits += bit_error_counts(y, ref)
                elements += y.size
                elements_err += int(np.count_nonzero(y != ref))
                tiles += stats.n_tiles
                tiles_err += stats.tiles_err
                flagged = stats.tiles.any_err
                wrong = wrong_tiles(y, ref, acc.array_n)
                false_alarms += int(np.count_nonzero(flagged & ~wrong))
                missed += int(np.count_nonzero(wrong & ~flagged))
                if progress:
                    progress(1)
            points.append(SweepPoint(mhz, applied, elements, elements_err, tiles, tiles_err, bits,
                                     false_alarms, missed))
    finally:
        acc.set_clock(nominal)
    return points


def write_csv(points: Sequence[SweepPoint], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["requested_mhz", "applied_mhz", "elements", "element_error_rate", "tiles", "tile_error_rate",
                     "false_alarm_rate", "missed_rate", *[f"bit{b}" for b in range(BITS)]])
    for p in points:
        writer.writerow([p.requested_mhz, f"{p.applied_mhz:.4f}", p.elements, f"{p.element_error_rate:.6g}",
                         p.tiles, f"{p.tile_error_rate:.6g}", f"{p.false_alarm_rate:.6g}", f"{p.missed_rate:.6g}",
                         *[f"{r:.6g}" for r in p.bit_error_rates]])
    atomic_write_text(path, buffer.getvalue())


def plot(points: Sequence[SweepPoint], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clocks = [p.applied_mhz for p in points]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    left.plot(clocks, [p.element_error_rate for p in points], "o-", label="output elements")
    left.plot(clocks, [p.tile_error_rate for p in points], "s--", label="tiles")
    left.set_yscale("symlog", linthresh=1e-4)
    left.set_xlabel("array clock (MHz)")
    left.set_ylabel("fraction with an error")
    left.legend()
    left.grid(alpha=0.3)
    rates = np.array([p.bit_error_rates for p in points]).T
    image = right.imshow(np.log10(rates + 1e-7), aspect="auto", origin="lower", cmap="magma",
                         extent=(0, len(points), -0.5, BITS - 0.5), vmin=-7, vmax=0)
    right.set_xticks(np.arange(len(points)) + 0.5, [f"{c:.0f}" for c in clocks], rotation=60)
    right.set_xlabel("array clock (MHz)")
    right.set_ylabel("bit position")
    fig.colorbar(image, ax=right, label="log10 bit error rate")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
