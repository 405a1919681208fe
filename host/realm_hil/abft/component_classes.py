"""Which components share a recover rule: the split into sensitive and resilient classes.

docs/abft-statistics.md, "Which components share a rule", says why the split is measured this way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from realm_hil.abft.characterization_sweep import PointResult, damage
from realm_hil.errors import InputError
from realm_hil.llm.selection import RESILIENT_COMPONENTS, SENSITIVE_COMPONENTS

# The paper's split (llm/selection.py), used for components a sweep did not characterize.
PAPER_CLASSES = {"sensitive": SENSITIVE_COMPONENTS, "resilient": RESILIENT_COMPONENTS}


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
        sensitive = [c for c in order if c in SENSITIVE_COMPONENTS]
        resilient = [c for c in order if c not in SENSITIVE_COMPONENTS]
    sensitive += [c for c in rest if c in SENSITIVE_COMPONENTS]
    resilient += [c for c in rest if c not in SENSITIVE_COMPONENTS]
    classes = {"sensitive": tuple(sensitive), "resilient": tuple(resilient)}
    return Classification(score, onsets(points), classes, tuple(order))
