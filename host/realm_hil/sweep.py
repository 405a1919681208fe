"""Error rate per output element and per bit position against the array clock (`realm-hil sweep-clock`)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .accelerator import Accelerator
from .backends.registry import backend_spec, backends_with, open_accelerator, options_for
from .errors import InputError, MissingDependency, missing_dependency
from .results import atomic_write_text
from .tiling import int32_gemm, pad_to_tiles
from .workload import Gemm, random_workload

BITS = 32
WORKLOADS = ("random", "llm")
# (done, total) GEMMs after each one
Progress = Callable[[int, int], None]


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


@dataclass(frozen=True)
class SweepConfig:
    backend: str = "twin"  # one whose clock changes what it computes
    profile: str = "pynq-z2"  # device timing profile (sim, twin)
    start_mhz: float | None = None  # first clock [the profile's nominal]
    stop_mhz: float | None = None  # last clock [1.5 x nominal]
    steps: int = 16
    workload: str = "random"  # random operands, or "llm": GEMMs captured from the model
    gemms: int = 6  # GEMMs in the workload
    seed: int = 0  # operands and per-PE variation
    emulate_checks: bool = False  # the checksum accumulators overclocked with the array (sim, twin)

    def __post_init__(self) -> None:
        if self.start_mhz is not None and self.stop_mhz is not None:
            clock_range(self.start_mhz, self.start_mhz, self.stop_mhz, self.steps)  # a backwards range fails now
        if not backend_spec(self.backend).capabilities.clock_control:
            raise InputError(f"a clock sweep needs a backend whose clock changes what it computes "
                             f"({', '.join(backends_with('clock_control'))}), not {self.backend}")
        if self.workload not in WORKLOADS:
            raise InputError(f"the workload is one of {', '.join(WORKLOADS)}, got {self.workload!r}")
        self.backend_options()  # what the backend cannot use fails before it opens

    def backend_options(self):
        return options_for(self.backend, profile=self.profile, seed=self.seed, emulate_checks=self.emulate_checks)


@dataclass
class SweepResult:
    config: SweepConfig
    points: list[SweepPoint]

    def table(self) -> str:
        lines = [f"{'MHz':>8} {'elem err':>10} {'tile err':>9} {'false al.':>9} {'missed':>9}  highest bit in error"]
        for p in self.points:
            wrong = np.nonzero(p.bit_errors)[0]
            lines.append(f"{p.applied_mhz:8.2f} {p.element_error_rate:10.3g} {p.tile_error_rate:9.3g} "
                         f"{p.false_alarm_rate:9.3g} {p.missed_rate:9.3g}  {wrong.max() if wrong.size else '-'}")
        return "\n".join(lines)

    def save(self, out_dir: Path) -> tuple[Path, Path | MissingDependency]:
        """sweep.csv and sweep.png in out_dir; for the PNG, why not when matplotlib is not installed.

        The CSV holds every number; a board, whose image may lack matplotlib, still gets it.
        """
        c = self.config
        checks = ", checksums overclocked" if c.emulate_checks else ""
        csv_path, png_path = Path(out_dir) / "sweep.csv", Path(out_dir) / "sweep.png"
        write_csv(self.points, csv_path)
        try:
            plot(self.points, png_path, f"{c.backend} / {c.profile}: {c.workload} workload, seed {c.seed}{checks}")
        except ModuleNotFoundError as exc:
            missing = missing_dependency(exc, "sweep.png")
            if missing is None or missing.package != "matplotlib":
                raise
            return csv_path, missing
        return csv_path, png_path


def run_sweep(config: SweepConfig, progress: Progress | None = None) -> SweepResult:
    """Open the backend, take the workload, run it at every clock of the sweep."""
    with open_accelerator(config.backend, config.backend_options()) as acc:
        clocks = clock_range(acc.clock_mhz, config.start_mhz, config.stop_mhz, config.steps)
        if config.workload == "llm":
            from .llm.capture import llm_workload

            workload = llm_workload(count=config.gemms, seed=config.seed)
            if len(workload) < config.gemms:
                raise InputError(f"the llm workload has {len(workload)} GEMMs, not {config.gemms}")
        else:
            workload = random_workload(count=config.gemms, seed=config.seed)
        return SweepResult(config, sweep_clock(acc, workload, clocks, progress))


def sweep_clock(
    acc: Accelerator,
    workload: Sequence[Gemm],
    clocks_mhz: Sequence[float],
    progress: Progress | None = None,
) -> list[SweepPoint]:
    """Run every GEMM of the workload at every clock on `acc`; the clock is restored afterwards."""
    exact = [int32_gemm(g.x, g.w) for g in workload]
    nominal = acc.clock_mhz
    total = len(clocks_mhz) * len(workload)
    points = []
    try:
        for mhz in clocks_mhz:
            applied = acc.set_clock(mhz)
            bits = np.zeros(BITS, dtype=np.int64)
            elements = elements_err = tiles = tiles_err = false_alarms = missed = 0
            for index, (gemm, ref) in enumerate(zip(workload, exact, strict=True)):
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
                    progress(len(points) * len(workload) + index + 1, total)
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
