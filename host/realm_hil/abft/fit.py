"""Fit of the critical-region boundary, its translation into the hardware's per-tile rule, and the
end-to-end characterization run that turns a sweep into an ABFT profile.

Boundary (per GEMM, per component class). In the plane x = log2 MSD, y = log2 freq a point is
critical when y <= a * x + b: at equal total deviation, few large errors hurt more than many
small ones (the paper's figure; our sweeps). The line must put every critical point of the data
on the critical side: an ABFT that misses a critical error costs perplexity, one that flags a
benign error costs only a recomputation. Among such lines (for each slope, the intercept is set
by the worst critical point) the fit takes the one that flags the fewest benign points. Many
slopes tie on separable grid data; the tie goes to the slope nearest the direction of an
L2-regularized logistic regression (critical = 1), which on separable data tends to the
max-margin direction (Soudry et al. 2018) and stays defined when noise makes the data
inseparable, without an SVM solver. A class that mixes components of different shapes is
inseparable by any line; the search then still finds the cheapest safe line, where the logistic
direction alone can be far off.

Translation to the per-tile rule. The hardware sees one n x n tile at a time: its msd_t and, per
column, |d_c|; it recovers when freq_eff = #{c : |d_c| > theta(msd_t)} >= freq_min with
theta = 2^(alpha * log2 msd_t + beta). Errors are sparse in the critical region (a critical
GEMM holds few large errors among M x N >= 10^4 outputs), so a tile holds at most a few of them
and a per-tile rule must flag every tile whose errors, alone, would make a GEMM critical. For a
tile holding f equal errors of magnitude m (msd_t = f m), that GEMM is critical when
log2 f <= a (log2 f + log2 m) + b, i.e. log2 m >= ((1 - a) log2 f - b) / a. Setting theta at
that magnitude and substituting f = msd_t / theta gives log2 theta = (1 - a) log2 msd_t - b, so

    alpha = 1 - a,   beta = -b,   freq_min = 1,

exactly: every column of such a tile exceeds theta iff the tile alone is critical. freq_min
stays 1 because a tile has only n columns: the per-GEMM frequency that separates the resilient
class (hundreds of errors) cannot be seen inside one tile, whose error count at those densities
is 0 or 1. When a critical GEMM spreads its errors over many tiles and a > 1, each tile holds
fewer errors than the GEMM and needs a larger magnitude to trip the rule; `translate` therefore
replays every characterized point through the bit-exact statistics unit (realm_hil.stats) on
the component's real GEMM shape, recovers the flagged tiles, and lowers beta until the errors
left behind are benign for every critical point (reported as the beta margin), then reports
recall (critical points made benign) and the flag rate on benign points.

Frequency floor (the paper's resilient class). Some components are harmed only by many large
errors: a few, however large, stay benign (our sweeps: q and k, whose errors saturate one softmax
row). Their critical region is bounded below in log2 freq as well, at the lowest freq of any
critical point. The line is fitted to the points at or above that floor, and the floor becomes
the class's GEMM gate: the flagged tiles of a GEMM count only when its total freq_eff reaches
2^floor. Points below the floor are all benign, so the gate never lets a critical point through.
"""

from __future__ import annotations

import csv
import datetime
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from realm_hil.abft.abft_profile import PROFILE_COMPONENTS, AbftProfile, Boundary, ComponentClass, Provenance
from realm_hil.abft.characterize import (
    CharacterizeConfig,
    PointResult,
    Progress,
    SumDeviation,
    Sweep,
    check_against_model,
    damage,
    load_sweep,
    open_log,
    run_points,
    sensitivity_summary,
)
from realm_hil.abft.policies import gated
from realm_hil.errors import InputError
from realm_hil.llm.model import load_config
from realm_hil.llm.selection import Selection
from realm_hil.results import atomic_write_text, check_output_dir
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
    """alpha = 1 - a, beta = -b (module docstring)."""
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


# The paper's split, used for components a sweep did not characterize.
PAPER_SENSITIVE = ("o", "down")


@dataclass(frozen=True)
class ClassFit:
    name: str
    components: tuple[str, ...]
    fit: BoundaryFit | None  # None: the grid's points are all benign or all critical (`always`)
    rule: TileRule | None
    always: bool = False  # every point critical, even the grid's smallest errors: recover on any deviation


@dataclass(frozen=True)
class Classification:
    severity: dict[str, float]  # component -> mean log10(1 + ppl increase) over its grid points
    onsets: dict[str, float]  # component -> lowest critical log2 MSD over its layer groups (inf: never)
    classes: dict[str, tuple[str, ...]]
    measured: tuple[str, ...]  # components the split was measured for; the rest follow the paper


def onsets(points: Sequence[PointResult]) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in points:
        out.setdefault(p.component, math.inf)
        if p.critical:
            out[p.component] = min(out[p.component], p.log2_msd)
    return out


def severity(points: Sequence[PointResult]) -> dict[str, float]:
    sums: dict[str, list[float]] = {}
    for p in points:
        sums.setdefault(p.component, []).append(damage(p.delta))
    return {c: float(np.mean(v)) for c, v in sums.items()}


def classify(points: Sequence[PointResult], components: Sequence[str]) -> Classification:
    """Split components at the largest gap between their severities (a natural break in one dimension).

    Severity is the mean log10(1 + perplexity increase) over the same grid points for every
    component: it ranks how much of the grid is harmful and how badly, and unlike the onset (lowest
    critical MSD) it does not tie on a coarse log2 grid. Splitting at the widest gap needs no tuned
    cut-off. Components the sweep did not cover keep the paper's class.
    """
    score = severity(points)
    if not score:
        raise InputError("no characterization points to classify")
    order = sorted(score, key=lambda c: (-score[c], c))
    values = [score[c] for c in order]
    gaps = [a - b for a, b in zip(values, values[1:], strict=False)]
    rest = [c for c in components if c not in score]
    if gaps and max(gaps) > 0:
        cut = int(np.argmax(gaps)) + 1
        sensitive, resilient = order[:cut], order[cut:]
    else:  # one component or all alike: no measured split, keep the paper's
        sensitive = [c for c in order if c in PAPER_SENSITIVE]
        resilient = [c for c in order if c not in PAPER_SENSITIVE]
    sensitive += [c for c in rest if c in PAPER_SENSITIVE]
    resilient += [c for c in rest if c not in PAPER_SENSITIVE]
    classes = {"sensitive": tuple(sensitive), "resilient": tuple(resilient)}
    return Classification(score, onsets(points), classes, tuple(order))


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


def approx_thresholds(
    points: Sequence[PointResult],
    groups: dict[str, frozenset[int]],
    num_layers: int,
    components: Sequence[str],
    grid_msd: Sequence[int],
) -> dict[str, tuple[int, ...]]:
    """ApproxABFT per-layer tile MSD thresholds: the largest grid MSD below the layer group's onset.

    A tile whose msd alone reaches the group's lowest critical GEMM MSD is flagged; components or
    groups never critical on the grid get the grid's largest MSD (no harm seen below it), and
    layers outside every group take the nearest group's threshold.
    """
    grid_msd = sorted(grid_msd)
    per_group: dict[tuple[str, str], int] = {}
    for component in components:
        for group in groups:
            crit = [
                p.log2_msd for p in points if p.component == component and p.group == group and p.critical
            ]
            seen = [p for p in points if p.component == component and p.group == group]
            if not seen:
                continue
            if crit:
                below = [m for m in grid_msd if m < min(crit)]
                per_group[component, group] = 1 << (below[-1] if below else max(min(crit) - 1, 0))
            else:
                per_group[component, group] = 1 << grid_msd[-1]
    out = {}
    for component in components:
        mine = {g: t for (c, g), t in per_group.items() if c == component}
        if not mine:
            continue
        thresholds = []
        for layer in range(num_layers):
            nearest = min(mine, key=lambda g: min(abs(layer - other) for other in groups[g]))
            thresholds.append(mine[nearest])
        out[component] = tuple(thresholds)
    return out


@dataclass
class Characterization:
    config: CharacterizeConfig
    points: list[PointResult]
    clean: dict[str, float]
    classification: Classification
    fits: dict[str, ClassFit]
    profile: AbftProfile
    summary: dict[str, dict[str, float]]

    def report(self) -> str:
        c = self.config
        lines = [
            f"{c.model}: {c.tokens} tokens of {c.text} in {c.window}-token windows, seed {c.seed}; "
            f"error-free W8A8 ppl "
            + ", ".join(f"{s} {v:.3f}" for s, v in self.clean.items())
            + f"; critical = ppl increase > {c.tolerance}",
            "onset = lowest log2 MSD critical at any log2 freq (per GEMM, every GEMM of the group hit)",
            f"{'stage/group/component':<28}{'onset':>7}{'critical':>10}  onset by log2 freq",
        ]
        for key, row in sorted(self.summary.items()):
            by_freq = " ".join(
                f"f{k[7:]}:{v:g}" for k, v in sorted(row.items(), key=_freq_order) if k.startswith("onset@")
            )
            lines.append(
                f"{key:<28}{row['onset']:>7g}{int(row['critical']):>5}/{int(row['points']):<4}  {by_freq}"
            )
        sev = self.classification.severity
        lines.append(
            "severity (mean log10(1 + ppl increase) over the grid): "
            + ", ".join(f"{c} {sev[c]:.2f}" for c in self.classification.measured)
        )
        for name, cf in self.fits.items():
            lines.append(f"{name}: {', '.join(cf.components)}")
            if cf.always:
                lines.append("  every point critical: the tile rule recovers on any deviation")
                continue
            if cf.fit is None:
                lines.append("  no critical point on the grid: the tile rule never recovers")
                continue
            b, r = cf.fit.boundary, cf.rule
            lines.append(
                f"  boundary log2 freq <= {b.slope:.3f} log2 MSD {b.intercept:+.3f} "
                f"({cf.fit.critical}/{cf.fit.points} critical, {cf.fit.benign_on_critical_side} benign "
                f"on the critical side, intercept raised {cf.fit.shift:.2f})"
            )
            if cf.fit.floor:
                lines.append(
                    f"  frequency floor: nothing critical below log2 freq {cf.fit.floor}, "
                    f"GEMM gate total freq_eff >= {r.gemm_freq_min}"
                )
            lines.append(
                f"  tile rule alpha {r.alpha:.4f} beta {r.beta:.4f} freq_min {r.freq_min} (beta margin "
                f"{r.beta_margin:.2f}): recall {r.recall:.3f}, benign points flagged {r.benign_flag_rate:.3f}"
            )
        return "\n".join(lines)


def _freq_order(item: tuple[str, float]) -> int:
    return int(item[0][7:]) if item[0].startswith("onset@f") else -1


def build_profile(
    config: CharacterizeConfig,
    points: list[PointResult],
    sweep_shapes: dict,
    num_layers: int,
    groups: dict[str, str],
    date: str,
) -> tuple[AbftProfile, Classification, dict[str, ClassFit]]:
    """The ABFT profile of a sweep: classes from the split, rules from the fits, approx thresholds."""
    stage = "prefill" if "prefill" in config.stages else config.stages[0]
    used = [p for p in points if p.stage == stage]
    classification = classify(used, PROFILE_COMPONENTS)
    shapes = {comp: shape for (s, comp), shape in sweep_shapes.items() if s == stage}
    fits = fit_classes(used, classification, shapes, config.array_n, config.seed)
    notes = [f"stage {stage}; split measured for {', '.join(classification.measured)}"]
    missing = [c for c in PROFILE_COMPONENTS if c not in classification.measured]
    if missing:
        notes.append(f"{', '.join(missing)} not characterized: classed as in the paper")
    classes = {}
    for name, cf in fits.items():
        if cf.always:
            notes.append(f"{name}: every grid point critical, rule recovers on any deviation (theta 0)")
            classes[name] = ComponentClass(cf.components, 0.0, -1.0, 1)
        elif cf.fit is None:
            notes.append(f"{name}: no critical point on the grid, rule never recovers (theta 2^31)")
            classes[name] = ComponentClass(cf.components, 0.0, 31.0, 1)
        else:
            classes[name] = ComponentClass(
                cf.components,
                cf.rule.alpha,
                cf.rule.beta,
                cf.rule.freq_min,
                Boundary(round(cf.fit.boundary.slope, 4), round(cf.fit.boundary.intercept, 4)),
                cf.rule.gemm_freq_min,
            )
    layer_sets = {
        g: Selection.parse(pattern, num_layers=num_layers).layers or frozenset(range(num_layers))
        for g, pattern in groups.items()
    }
    approx = approx_thresholds(used, layer_sets, num_layers, PROFILE_COMPONENTS, config.grid.log2_msd)
    groups_text = "; ".join(f"{g}={p}" for g, p in groups.items())
    profile = AbftProfile(
        model=config.model,
        array_n=config.array_n,
        tolerance=config.tolerance,
        classes=classes,
        approx=approx,
        provenance=Provenance(
            config.text,
            config.tokens,
            config.seed,
            date,
            f"{config.grid.spec()}; window {config.window}; groups {groups_text}",
            "; ".join(notes),
        ),
    )
    return profile, classification, fits


def run_characterization(
    config: CharacterizeConfig,
    out_dir: Path,
    resume: bool = False,
    progress: Progress | None = None,
    sweep: Sweep | None = None,
) -> Characterization:
    """Sweep (resumable), fit, and write profile.yaml, points.csv, heatmap.png and report.txt to out_dir.

    Everything checkable is checked before the model loads: the output directory, the layer groups
    and the grid against the model's configuration, the resume identity.
    """
    out_dir = check_output_dir(out_dir)
    groups = check_against_model(config, sweep.model.config if sweep is not None else load_config(config.model))
    log = open_log(out_dir, config, groups, resume)
    sweep = sweep if sweep is not None else load_sweep(config)
    points = run_points(sweep, config, log, progress)
    profile, classification, fits = build_profile(
        config, points, sweep.shapes, sweep.num_layers, groups, datetime.date.today().isoformat()
    )
    result = Characterization(
        config, points, sweep.clean, classification, fits, profile, sensitivity_summary(points)
    )
    profile.save(out_dir / "profile.yaml")
    write_csv(points, classification, out_dir / "points.csv")
    plot_heatmap(result, out_dir / "heatmap.png")
    atomic_write_text(out_dir / "report.txt", result.report() + "\n")
    return result


def write_csv(points: Sequence[PointResult], classification: Classification, path: Path) -> None:
    cls = {c: name for name, members in classification.classes.items() for c in members}
    buf = io.StringIO()
    names = list(PointResult.__dataclass_fields__)
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*names, "class"])
    for p in points:
        writer.writerow([getattr(p, n) for n in names] + [cls.get(p.component, "")])
    atomic_write_text(path, buf.getvalue())


def plot_heatmap(result: Characterization, path: Path) -> None:
    """Perplexity increase over the grid, one panel per component and stage/group, class boundary drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = result.config.grid
    panels = sorted({(p.stage, p.group) for p in result.points})
    comps = [c for c in result.config.components]
    boundary = {c: cf.fit.boundary for cf in result.fits.values() if cf.fit for c in cf.components}
    cls = {c: name for name, members in result.classification.classes.items() for c in members}
    xs, ys = list(grid.log2_msd), list(grid.log2_freq)
    fig, axes = plt.subplots(
        len(comps),
        len(panels),
        figsize=(3.2 * len(panels) + 1.2, 2.2 * len(comps) + 0.6),
        squeeze=False,
        layout="constrained",
        sharex=True,
        sharey=True,
    )
    cap = 4.0
    cmap = plt.get_cmap("magma").with_extremes(
        bad="lightgrey"
    )  # grey: infeasible (MSD / freq outside 1..2^31)
    image = None
    for i, comp in enumerate(comps):
        for j, (stage, group) in enumerate(panels):
            ax = axes[i][j]
            values = np.full((len(ys), len(xs)), np.nan)
            for p in result.points:
                if p.component == comp and p.stage == stage and p.group == group:
                    values[ys.index(p.log2_freq), xs.index(p.log2_msd)] = min(
                        math.log10(1 + max(p.delta, 0)), cap
                    )
                    if p.critical:
                        ax.plot(p.log2_msd, p.log2_freq, "x", color="white", ms=4)
            step_x = (xs[1] - xs[0]) / 2 if len(xs) > 1 else 0.5
            step_y = (ys[1] - ys[0]) / 2 if len(ys) > 1 else 0.5
            image = ax.imshow(
                values,
                origin="lower",
                aspect="auto",
                cmap=cmap,
                vmin=0,
                vmax=cap,
                extent=(xs[0] - step_x, xs[-1] + step_x, ys[0] - step_y, ys[-1] + step_y),
            )
            if comp in boundary:
                b = boundary[comp]
                line = np.linspace(xs[0] - step_x, xs[-1] + step_x, 50)
                ax.plot(line, b.slope * line + b.intercept, "-", color="cyan", lw=1.5)
                ax.set_ylim(ys[0] - step_y, ys[-1] + step_y)
            ax.set_title(f"{comp} ({cls.get(comp, '?')}) {stage}/{group}", fontsize=8)
            if i == len(comps) - 1:
                ax.set_xlabel("log2 MSD")
            if j == 0:
                ax.set_ylabel("log2 freq")
    fig.colorbar(image, ax=axes, label="log10(1 + ppl increase)", shrink=min(1.0, 3 / len(comps) + 0.2))
    fig.suptitle(
        f"{result.config.model}: x critical (> {result.config.tolerance} ppl), line = class boundary",
        fontsize=9,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
