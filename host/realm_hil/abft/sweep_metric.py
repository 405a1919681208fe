"""The metric a characterization sweep fits its critical region on (`characterize --metric`).

Each point's damage is the change of the metric from the error-free W8A8 model's value, in the
metric's own units and with larger meaning worse; a point is critical when its damage exceeds
the tolerance (after the monotone fit along MSD, characterization_sweep.label_critical):
- ppl: the perplexity increase (inf when the evaluation diverged);
- top1: the fraction of scored positions whose argmax next token is no longer the error-free
  model's (1 - top-1 agreement, llm/agreement.py), from the same forward as the perplexity;
- task:NAME: the drop of an lm-evaluation-harness task's first metric (acc, exact_match, ...;
  a rise for a metric where lower is better), the task run through the harness (llm/harness.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from realm_hil.errors import InputError

METRICS = ("ppl", "top1", "task:NAME")
# Default tolerances: a perplexity increase of 1, 5 % of the positions' top-1 token changed, a 2-point drop
# of a task score (accuracies are fractions).
DEFAULT_TOLERANCE = {"ppl": 1.0, "top1": 0.05, "task": 0.02}


@dataclass(frozen=True)
class SweepMetric:
    name: str  # "ppl", "top1" or "task:NAME"

    def __post_init__(self) -> None:
        kind, sep, task = self.name.partition(":")
        if not (self.name in ("ppl", "top1") or (kind == "task" and sep and task)):
            raise InputError(f"metric must be ppl, top1 or task:NAME (an lm-evaluation-harness task), "
                             f"got {self.name!r}")

    @property
    def kind(self) -> str:
        return self.name.partition(":")[0]

    @property
    def task(self) -> str | None:
        return self.name.partition(":")[2] or None

    @property
    def default_tolerance(self) -> float:
        return DEFAULT_TOLERANCE[self.kind]

    @property
    def damage_label(self) -> str:
        """What a point's damage is, for reports and plots."""
        return {"ppl": "ppl increase", "top1": "top-1 changed", "task": f"{self.task} drop"}[self.kind]

    def damage(self, value: float, clean: float, higher_is_better: bool = True) -> float:
        """The damage of `value` against the error-free `clean` one: how much worse, inf if not finite."""
        if not math.isfinite(value):
            return math.inf
        if self.kind == "ppl" or not higher_is_better:
            return value - clean
        return clean - value
