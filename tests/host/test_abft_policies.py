"""Recover policies: the registers each programs and its per-tile decisions against the statistics model."""

import numpy as np
import pytest

from realm_hil.abft.policies import POLICIES, get_policy, registers
from realm_hil.abft.profile import profile_from_dict
from realm_hil.abft.recovery import ProtectedGemm, SoftwareFaultAccelerator
from realm_hil.llm.gemm import GemmSite
from realm_hil.stats import PolicyConfig, tile_stats
from realm_hil.tiling import int32_gemm, plan_for, reference_deviations, split_tiles

N = 8
SIGN = -(1 << 31)


def profile():
    return profile_from_dict(
        {
            "schema_version": 1,
            "model": "test",
            "array_n": N,
            "tolerance": 1.0,
            "classes": {
                # sensitive: recover any tile with a column deviation above 2^(0.5 log2 msd + 4)
                "sensitive": {"components": ["o", "down"], "alpha": 0.5, "beta": 4.0, "freq_min": 1},
                "resilient": {
                    "components": ["q", "k", "v", "gate", "up"],
                    "alpha": -0.5,
                    "beta": 20.0,
                    "freq_min": 2,
                },
            },
            "approx": {c: [1000, 1 << 20, 1 << 28] for c in ("q", "k", "v", "o", "gate", "up", "down")},
            "provenance": {"text": "t", "tokens": 1, "seed": 0, "date": "2025-01-01", "grid": "g"},
        }
    )


class AddErrors:
    """A fault hook adding a fixed error matrix (wrapping like the INT32 accumulator)."""

    def __init__(self, err: np.ndarray):
        self.err = err
        self.faulty = None

    def __call__(self, acc, site):
        acc = ((acc.astype(np.int64) + self.err) % (1 << 32)).astype(np.uint32).view(np.int32)
        self.faulty = acc.copy()
        return acc


def random_errors(rng, m, n):
    """Scattered errors of every magnitude, single-row and single-column tiles, and a sign-bit pair."""
    err = np.zeros((m, n), dtype=np.int64)
    count = m * n // 12
    pos = rng.choice(m * n, size=count, replace=False)
    bits = rng.integers(0, 32, size=count)
    err.reshape(-1)[pos] = rng.choice([-1, 1], size=count) * (1 << bits)
    err[0:8, 0:8] = 0
    err[3, [0, 2, 5]] = [7, -(1 << 20), 1 << 30]  # one bad row
    err[8:16, 8:16] = 0
    err[[9, 12], 13] = [1 << 25, 5]  # one bad column
    err[16:24, 0:8] = 0
    err[[16, 20], 5] = SIGN  # column deviation 0 mod 2^32: only the rows see it
    return err


def operands(rng, m=37, k=64, n=45):
    return (rng.integers(-128, 128, (m, k), dtype=np.int8), rng.integers(-128, 128, (k, n), dtype=np.int8))


def test_policy_names():
    assert set(POLICIES) == {"none", "classic", "approx", "statistical", "statistical2d", "correct", "clear"}
    with pytest.raises(ValueError, match="unknown ABFT policy"):
        get_policy("magic")


@pytest.mark.parametrize(
    "name, mode", [("none", "off"), ("classic", "classic"), ("correct", "classic"), ("clear", "off")]
)
def test_registers_without_thresholds(name, mode):
    assert registers(get_policy(name), None, None) == PolicyConfig(mode)


def test_registers_from_profile_per_layer_and_component():
    prof = profile()
    o2 = GemmSite(2, "o", "prefill")
    assert registers(POLICIES["approx"], prof, o2) == PolicyConfig("approx", msd_thresh=1 << 28)
    assert registers(POLICIES["statistical"], prof, o2) == PolicyConfig.from_floats("statistical", 0.5, 4.0)
    resilient = registers(POLICIES["statistical2d"], prof, GemmSite(0, "up", "decode"))
    assert resilient == PolicyConfig.from_floats("statistical", -0.5, 20.0, freq_min=2)


def test_registers_need_profile_and_site():
    with pytest.raises(ValueError, match="needs an ABFT profile"):
        registers(POLICIES["statistical"], None, GemmSite(0, "o", "prefill"))
    with pytest.raises(ValueError, match="layer and component"):
        registers(POLICIES["approx"], profile(), None)


@pytest.mark.parametrize("name", sorted(POLICIES))
@pytest.mark.parametrize("component, layer", [("o", 0), ("o", 1), ("up", 2)])
def test_decisions_match_statistics_model(name, component, layer):
    """Each tile is recovered exactly when the statistics model's rule says so; the rest stay as they were."""
    rng = np.random.default_rng(layer)
    x, w = operands(rng)
    plan = plan_for(x, w, N)
    hook = AddErrors(random_errors(rng, x.shape[0], w.shape[1]))
    policy = get_policy(name)
    site = GemmSite(layer, component, "prefill")
    protected = ProtectedGemm(SoftwareFaultAccelerator(hook, N), policy, profile(), measure=True)
    protected.site = site
    y = protected.gemm(x, w)
    exact = int32_gemm(x, w)

    pad = ((0, plan.tiles_m * N - plan.m), (0, plan.tiles_n * N - plan.n))
    faulty_tiles = split_tiles(np.pad(hook.faulty, pad), plan)
    exact_tiles = split_tiles(np.pad(exact, pad), plan)
    d, e = reference_deviations(faulty_tiles, exact_tiles)
    config = registers(policy, profile(), site)
    expected = tile_stats(d, e, config).recover
    if policy.rows:
        expected = expected | tile_stats(e, d, config).recover
    cost = protected.last_cost
    assert cost.tiles_flagged == expected.sum()
    assert cost.tiles_corrected + cost.tiles_recomputed == cost.tiles_flagged
    y_tiles = split_tiles(np.pad(y, pad), plan)
    if not policy.clear:
        assert np.array_equal(y_tiles[expected], exact_tiles[expected])
        assert np.array_equal(y_tiles[~expected], faulty_tiles[~expected])
    if name in ("classic", "correct"):
        assert np.array_equal(y, exact)
    if name == "correct":
        assert cost.tiles_corrected >= 2  # the single-row and single-column tiles
    if name in ("none", "clear"):
        assert cost.tiles_flagged == 0 and cost.tiles_recomputed == 0


def test_column_statistics_miss_a_sign_bit_pair_the_rows_catch():
    """Two -2^31 errors in one column cancel modulo 2^32: the paper's column-only rule passes the tile."""
    rng = np.random.default_rng(5)
    x, w = operands(rng, 8, 32, 8)
    err = np.zeros((8, 8), dtype=np.int64)
    err[[0, 4], 5] = SIGN
    flags = {}
    for name in ("statistical", "statistical2d", "classic"):
        protected = ProtectedGemm(SoftwareFaultAccelerator(AddErrors(err), N), name, profile())
        protected.site = GemmSite(0, "o", "prefill")
        y = protected.gemm(x, w)
        flags[name] = protected.last_cost.tiles_flagged
        assert protected.last_stats.tiles.msd[0] == 0 and protected.last_stats.tiles.row_freq[0] == 2
        assert np.array_equal(y, int32_gemm(x, w)) == bool(flags[name])
    assert flags == {"statistical": 0, "statistical2d": 1, "classic": 1}


def test_clear_zeroes_only_out_of_range_values():
    rng = np.random.default_rng(6)
    x, w = operands(rng, 16, 32, 16)
    err = np.zeros((16, 16), dtype=np.int64)
    err[1, 2] = 1 << 30  # far beyond |y| <= 32 * 128 * 128
    err[5, 7] = 3  # in range: invisible to clearance
    protected = ProtectedGemm(SoftwareFaultAccelerator(AddErrors(err), N), "clear", measure=True)
    y = protected.gemm(x, w)
    exact = int32_gemm(x, w)
    assert y[1, 2] == 0 and y[5, 7] == exact[5, 7] + 3
    assert protected.last_cost.elements_cleared == 1 and protected.last_cost.elements_wrong_after == 2


@pytest.mark.parametrize("gate, recovered", [(1, True), (4, True), (5, False)])
def test_gemm_gate_ignores_flags_of_gemms_with_few_large_errors(gate, recovered):
    """A resilient class's flags count only when the GEMM's total freq_eff reaches its gate."""
    raw = profile().to_dict()
    raw["classes"]["resilient"].update(freq_min=1, gemm_freq_min=gate)
    gated = profile_from_dict(raw)
    assert gated.gemm_gate("q") == gate and gated.gemm_gate("o") == 1
    rng = np.random.default_rng(7)
    x, w = operands(rng)
    err = np.zeros((x.shape[0], w.shape[1]), np.int64)
    err[[0, 9, 17, 25], [1, 10, 18, 26]] = 1 << 30  # four lone huge errors, one per tile
    protected = ProtectedGemm(SoftwareFaultAccelerator(AddErrors(err), N), get_policy("statistical"), gated)
    protected.site = GemmSite(0, "q", "prefill")
    y = protected.gemm(x, w)
    assert protected.last_stats.freq_eff == 4
    assert np.array_equal(y, int32_gemm(x, w)) == recovered
    assert protected.last_cost.tiles_flagged == (4 if recovered else 0)
