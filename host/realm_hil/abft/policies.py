"""Recover policies: what the statistics unit is programmed to flag, and what the host does with flags.

The decision which tiles need recovery is always the hardware's: before each GEMM the host
programs the unit's registers (rtl/README.md "Statistics words") and afterwards only reads the
per-tile recover flags. The policies differ in those registers and in the repair:
- none: unit off, nothing repaired (the unprotected baseline).
- classic: recover every tile with any nonzero deviation (classic ABFT).
- approx: recover tiles whose msd exceeds a per-layer, per-component threshold (ApproxABFT).
- statistical: the fitted ReaLM rule of the component's class, freq_eff >= freq_min per tile; for
  classes with a GEMM gate, the flags count only when the GEMM's total freq_eff (the unit's
  FREQ_EFF_TOTAL register, one read per GEMM) reaches the class's gemm_freq_min.
- statistical2d (beyond the paper): the same rule applied to the row deviations e_r as well.
  The paper's unit looks at columns only, and two sign-bit errors (+-2^31) in one column sum to
  0 modulo 2^32: the column statistics read msd = 0 and the tile passes. Timing errors make that
  systematic, because the slowest PEs share array columns and fail on the sign bit first. The
  rows see such a pair as two deviations of 2^31. The hardware has no row-side statistics, so
  the host evaluates the rule on the e_r words the unit already sends (stats.tile_stats_sparse) and
  recovers a tile when either view asks for it.
- correct: flags as classic; tiles whose deviations locate every error are fixed in place
  (abft/correct.py), only the others are recomputed.
- clear: unit off; accumulators outside their provable range are zeroed (anomaly clearance).
Thresholds come from the ABFT profile of the model (abft/abft_profile.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..gemm_call import GemmSite
from ..stats import GemmStats, PolicyConfig, tile_stats_sparse
from ..tiling import TilePlan
from .abft_profile import AbftProfile
from .correct import correct_tiles


@dataclass(frozen=True)
class Policy:
    name: str
    hardware_mode: str  # the statistics unit's POLICY.MODE
    correct: bool = False  # locate-and-correct flagged tiles before recomputing
    rows: bool = False  # also apply the rule to the row deviations
    clear: bool = False  # zero out-of-range accumulators

    @property
    def needs_site(self) -> bool:
        """True when the registers depend on the GEMM's layer and component (profile thresholds)."""
        return self.hardware_mode in ("approx", "statistical")


POLICIES = {
    p.name: p
    for p in (
        Policy("none", "off"),
        Policy("classic", "classic"),
        Policy("approx", "approx"),
        Policy("statistical", "statistical"),
        Policy("statistical2d", "statistical", rows=True),
        Policy("correct", "classic", correct=True),
        Policy("clear", "off", clear=True),
    )
}


def get_policy(policy: str | Policy) -> Policy:
    if isinstance(policy, Policy):
        return policy
    try:
        return POLICIES[policy]
    except KeyError:
        raise InputError(f"unknown ABFT policy {policy!r}: choose from {', '.join(POLICIES)}") from None


def gemm_gate(policy: Policy, profile: AbftProfile | None, site: GemmSite | None) -> int:
    """Total freq_eff below which a GEMM's flags are ignored (1: every flag counts)."""
    if policy.hardware_mode != "statistical" or profile is None or site is None:
        return 1
    return profile.gemm_gate(site.component)


def gated(flagged: np.ndarray, total_freq_eff: int, gate: int) -> np.ndarray:
    """The tile flags, or none when the GEMM's total freq_eff stays below its class's gate."""
    return np.zeros_like(flagged) if gate > 1 and total_freq_eff < gate else flagged


def registers(policy: Policy, profile: AbftProfile | None, site: GemmSite | None) -> PolicyConfig:
    """What to program into the statistics unit before a GEMM at `site`."""
    if not policy.needs_site:
        return PolicyConfig(policy.hardware_mode)
    if profile is None:
        raise InputError(f"policy {policy.name!r} needs an ABFT profile for its thresholds")
    if site is None or site.layer is None:
        raise ValueError(
            f"policy {policy.name!r} needs the layer and component of each GEMM; "
            f"route GEMMs through a GemmRouter, which passes each GEMM's site"
        )
    return profile.policy_for(policy.hardware_mode, site.layer, site.component)


@dataclass(frozen=True)
class TileDecision:
    """Per tile (row-major), what the host does after a GEMM."""

    flagged: np.ndarray  # the hardware's recover flag
    corrected: np.ndarray  # fixed in place from the deviations
    recompute: np.ndarray  # flagged and not corrected


def decide(
    policy: Policy,
    config: PolicyConfig,
    stats: GemmStats,
    y: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    plan: TilePlan,
    gate: int = 1,
) -> TileDecision:
    """Read the flags the unit raised under `config` (ignored when the GEMM's total freq_eff is
    below `gate`); for `correct`, fix the locatable flagged tiles of y = x w in place."""
    flagged = stats.tiles.recover.astype(bool)
    total_eff = stats.freq_eff
    if policy.rows:
        rows = tile_stats_sparse(_deviations(stats).row_dev, stats.col_dev, config)
        flagged = flagged | rows.recover
        total_eff = max(total_eff, int(rows.freq_eff.sum()))
    flagged = gated(flagged, total_eff, gate)
    corrected = np.zeros_like(flagged)
    if policy.correct and flagged.any():
        _deviations(stats)
        corrected = correct_tiles(y, x, w, plan, stats.col_dev, stats.row_dev, flagged)
    return TileDecision(flagged, corrected, flagged & ~corrected)


def _deviations(stats: GemmStats) -> GemmStats:
    if stats.col_dev is None or stats.row_dev is None:
        raise ValueError("this policy needs the backend's per-tile deviations (GemmStats.col_dev, row_dev)")
    return stats
