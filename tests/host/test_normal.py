"""timing.normal against scipy.special: the same bits, so no modeled die changes when scipy is not there."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr as scipy_ndtr
from scipy.special import ndtri as scipy_ndtri

from realm_hil.timing import normal
from realm_hil.timing.device_profile import list_profiles, load_profile
from realm_hil.timing.slack import CHECK_GROUPS, max_variation


def _bits(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).view(np.int64)


def _same_bits(ours, theirs) -> None:
    ours, theirs = _bits(ours), _bits(theirs)
    differ = np.flatnonzero(ours != theirs)
    assert differ.size == 0, f"{differ.size} values differ, first at index {differ[:5]}"


def test_ndtri_is_scipys_bit_for_bit():
    rng = np.random.default_rng(20)
    u = np.concatenate([
        rng.random(100_000),  # the slack tables' draws: uniform in [0, 1)
        10.0 ** rng.uniform(-300, -0.87, 20_000),  # both tails of the log branch, z < 8 and z >= 8
        1.0 - rng.random(20_000) * 0.135,  # the upper tail, mirrored
        [np.nextafter(0.0, 1.0), 0.5, 0.135335283236612, 0.8646647167633873, np.nextafter(1.0, 0.0)],
    ])
    _same_bits([normal.ndtri(v) for v in u], scipy_ndtri(u))
    assert normal.ndtri(0.0) == -math.inf and normal.ndtri(1.0) == math.inf
    assert math.isnan(normal.ndtri(1.5))


def test_ndtr_is_scipys_bit_for_bit():
    rng = np.random.default_rng(21)
    x = np.concatenate([rng.normal(0.0, 4.0, 50_000), rng.uniform(-40.0, 40.0, 10_000),
                        [0.0, 1.0, -1.0, math.sqrt(2.0), 8.0 * math.sqrt(2.0), 39.0, -39.0]])
    _same_bits([normal.ndtr(v) for v in x], scipy_ndtr(x))


@pytest.mark.parametrize("name", list_profiles())
def test_every_shipped_die_keeps_its_factors(name):
    """The truncated lognormal of timing/slack.py, computed through scipy, for 300 seeds and two sizes."""
    from realm_hil.timing.slack import check_variation_map, variation_map

    profile = load_profile(name)
    top = scipy_ndtr(math.log(max_variation(profile)) / profile.variation_sigma)
    for n in (8, 16):
        for seed in range(300):
            rng = np.random.default_rng(seed)
            u_pe, u_check = rng.random((n, n)), rng.random((CHECK_GROUPS, n))
            for ours, u in ((variation_map(profile, n, seed), u_pe), (check_variation_map(profile, n, seed), u_check)):
                expected = np.minimum(np.exp(profile.variation_sigma * scipy_ndtri(u * top)), max_variation(profile))
                _same_bits(ours, expected)
