"""The characterization job: sweep a model's critical region, fit its classes, write the ABFT profile.

The sweep is abft/characterization_sweep.py, the split into classes abft/component_classes.py, the
boundary and tile-rule fit abft/boundary_fit.py, the files for people abft/characterization_report.py;
docs/abft-statistics.md ("Where the thresholds come from") states the method.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from realm_hil.abft.abft_profile import PROFILE_COMPONENTS, AbftProfile, Boundary, ComponentClass, Provenance
from realm_hil.abft.boundary_fit import ClassFit, fit_classes
from realm_hil.abft.characterization_report import plot_heatmap, report_text, sensitivity_summary, write_csv
from realm_hil.abft.characterization_sweep import (
    CharacterizeConfig,
    CharacterizeJob,
    PointResult,
    Sweep,
    check_against_model,
    plan_points,
    point_results,
)
from realm_hil.abft.component_classes import Classification, classify
from realm_hil.campaign import Executor, run_campaign
from realm_hil.campaign import point_key as campaign_key
from realm_hil.campaign.executors import InProcess
from realm_hil.errors import InputError
from realm_hil.llm.model import load_config
from realm_hil.llm.selection import Selection
from realm_hil.results import atomic_write_text, check_output_dir


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
        return report_text(self.config, self.clean, self.summary, self.classification, self.fits)


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
            config.metric,
        ),
    )
    return profile, classification, fits


def run_characterization(
    config: CharacterizeConfig,
    out_dir: Path,
    resume: bool = False,
    progress=None,
    sweep: Sweep | None = None,
    executor: Executor | None = None,
    campaign_dir: Path | None = None,
) -> Characterization:
    """Sweep (a resumable campaign), fit, and write profile.yaml, points.csv, heatmap.png and report.txt.

    Everything checkable is checked before the model loads: the output directory, the layer groups
    and the grid against the model's configuration, the resume identity. The points run on
    `executor` [in-process] and are stored in `campaign_dir` [out_dir] (campaign/store.py); `sweep`,
    an already prepared model, runs in-process only. `progress` is run_campaign's callback.
    """
    out_dir = check_output_dir(out_dir)
    executor = executor or InProcess()
    if sweep is not None and not isinstance(executor, InProcess):
        raise InputError("a prepared sweep runs in-process only")
    model_config = sweep.model.config if sweep is not None else load_config(config.model)
    groups = check_against_model(config, model_config)
    points = plan_points(config, groups)
    campaign = run_campaign(points, CharacterizeJob(config, sweep), executor, campaign_dir or out_dir,
                            config.identity(groups), resume, progress)
    results = point_results(points, campaign.records, config.tolerance, campaign.results.parent)
    # what the workers measured on the model, carried by each row (CharacterizeJob.evaluate)
    clean, shapes = {}, {}
    for point in points:
        row = campaign.records[campaign_key(point)]["row"]
        clean[point.stage] = row["clean"]
        shapes[point.stage, point.component] = tuple(row["shape"])
    profile, classification, fits = build_profile(
        config, results, shapes, model_config.num_hidden_layers, groups, datetime.date.today().isoformat()
    )
    result = Characterization(config, results, clean, classification, fits, profile, sensitivity_summary(results))
    profile.save(out_dir / "profile.yaml")
    write_csv(results, classification, out_dir / "points.csv")
    plot_heatmap(config, results, classification, fits, out_dir / "heatmap.png")
    atomic_write_text(out_dir / "report.txt", result.report() + "\n")
    return result
