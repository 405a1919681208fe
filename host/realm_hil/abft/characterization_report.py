"""What a characterization writes for people: the report text, the points as CSV, the heat map."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from realm_hil.abft.boundary_fit import ClassFit
from realm_hil.abft.characterization_sweep import CharacterizeConfig, PointResult
from realm_hil.abft.component_classes import Classification
from realm_hil.abft.sweep_metric import SweepMetric
from realm_hil.results import atomic_write_text


def sensitivity_summary(points: Sequence[PointResult]) -> dict[str, dict[str, float]]:
    """Per stage/group and component: lowest critical log2 MSD at each log2 freq, and the fraction critical.

    "onset" is the lowest log2 MSD that is critical at any freq (inf: never critical on the grid).
    """
    table: dict[str, dict[str, float]] = {}
    for p in points:
        row = table.setdefault(
            f"{p.stage}/{p.group}/{p.component}", {"onset": math.inf, "critical": 0, "points": 0}
        )
        row["points"] += 1
        if p.critical:
            row["critical"] += 1
            row["onset"] = min(row["onset"], p.log2_msd)
            col = f"onset@f{p.log2_freq}"
            row[col] = min(row.get(col, math.inf), p.log2_msd)
    return table


def report_text(
    config: CharacterizeConfig,
    clean: dict[str, float],
    summary: dict[str, dict[str, float]],
    classification: Classification,
    fits: dict[str, ClassFit],
) -> str:
    c = config
    lines = [
        f"{c.model}: {c.tokens} tokens of {c.text} in {c.window}-token windows, seed {c.seed}; "
        f"error-free W8A8 {c.metric} "
        + ", ".join(f"{s} {v:.3f}" for s, v in clean.items())
        + f"; critical = {SweepMetric(c.metric).damage_label} > {c.tolerance}",
        "onset = lowest log2 MSD critical at any log2 freq (per GEMM, every GEMM of the group hit)",
        f"{'stage/group/component':<28}{'onset':>7}{'critical':>10}  onset by log2 freq",
    ]
    for key, row in sorted(summary.items()):
        by_freq = " ".join(
            f"f{k[7:]}:{v:g}" for k, v in sorted(row.items(), key=_freq_order) if k.startswith("onset@")
        )
        lines.append(
            f"{key:<28}{row['onset']:>7g}{int(row['critical']):>5}/{int(row['points']):<4}  {by_freq}"
        )
    sev = classification.severity
    lines.append(
        f"severity (mean log10(1 + {SweepMetric(c.metric).damage_label}) over the grid): "
        + ", ".join(f"{c} {sev[c]:.2f}" for c in classification.measured)
    )
    for name, cf in fits.items():
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


def write_csv(points: Sequence[PointResult], classification: Classification, path: Path) -> None:
    cls = {c: name for name, members in classification.classes.items() for c in members}
    buf = io.StringIO()
    names = list(PointResult.__dataclass_fields__)
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*names, "class"])
    for p in points:
        writer.writerow([getattr(p, n) for n in names] + [cls.get(p.component, "")])
    atomic_write_text(path, buf.getvalue())


def plot_heatmap(
    config: CharacterizeConfig,
    points: Sequence[PointResult],
    classification: Classification,
    fits: dict[str, ClassFit],
    path: Path,
) -> None:
    """Perplexity increase over the grid, one panel per component and stage/group, class boundary drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = config.grid
    panels = sorted({(p.stage, p.group) for p in points})
    comps = [c for c in config.components]
    boundary = {c: cf.fit.boundary for cf in fits.values() if cf.fit for c in cf.components}
    cls = {c: name for name, members in classification.classes.items() for c in members}
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
            for p in points:
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
    fig.colorbar(image, ax=axes, label=f"log10(1 + {SweepMetric(config.metric).damage_label})",
                 shrink=min(1.0, 3 / len(comps) + 0.2))
    fig.suptitle(
        f"{config.model}: x critical ({SweepMetric(config.metric).damage_label} > {config.tolerance}), "
        "line = class boundary",
        fontsize=9,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
