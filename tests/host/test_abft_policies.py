"""Recover policies: the registers each programs and its per-tile decisions against hand-derived rules."""

import numpy as np
import pytest
from oracles import int32_matmul, tiles_of, wrap_int32

from realm_hil.abft.abft_profile import profile_from_dict
from realm_hil.abft.policies import POLICIES, get_policy, registers
from realm_hil.abft.recovery import ProtectedGemm, SoftwareFaultAccelerator
from realm_hil.llm.gemm import GemmSite
from realm_hil.stats import PolicyConfig

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

    def __call__(self, acc, site):
        return wrap_int32(acc.astype(np.int64) + self.err)


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


# Sites of the tests below: the profile's sensitive class (o) under approx thresholds 1000 (layer
# 0) and 2^20 (layer 1), and its resilient class (up) under 2^28 (layer 2).
SITES = {"A": ("o", 0), "B": ("o", 1), "C": ("up", 2)}
TILES_N = 6  # the 24 x 45 result below: 3 x 6 tiles, the last tile column 5 wide

# (tile, errors [(row, col, value) inside the tile], {policy: sites that recover the tile}), worked
# out by hand from the rules as rtl/README.md states them (d_c, e_r: column and row sums of the
# tile's error matrix modulo 2^32; msd = sum_c |d_c|):
#   classic, correct: any d_c or e_r nonzero.   approx: msd > the site's threshold.
#   statistical: #{c : |d_c| > theta} >= freq_min, theta = 2^(alpha log2(msd) + beta);
#     sensitive alpha 0.5, beta 4, freq_min 1; resilient alpha -0.5, beta 20, freq_min 2.
#   statistical2d: the same rule on the rows (e_r) too.   none, clear: nothing.
# Magnitudes are powers of two, so log2(msd) is exact; where the exponent is not an integer the
# errors clear theta by far more than the unit's 8-bit fraction can move it.
SCENARIOS = [
    (0, [], {}),
    # msd 2^20: sensitive theta 2^14 -> flag; resilient theta 2^10 but only 1 < 2 deviations; approx
    # only A (2^20 is not above B's 2^20)
    (1, [(2, 3, 1 << 20)], {"approx": "A", "statistical": "AB", "statistical2d": "AB"}),
    # msd 64: sensitive theta 2^7 = 128 > 64; below every approx threshold
    (2, [(5, 0, -64)], {}),
    # msd 2^8: sensitive theta exactly 2^8, and |d| must exceed theta, not reach it
    (3, [(0, 7, 1 << 8)], {}),
    # msd 2^10: sensitive theta 2^9 -> flag; above A's 1000
    (4, [(6, 6, 1 << 10)], {"approx": "A", "statistical": "AB", "statistical2d": "AB"}),
    # two -2^31 in one column: d = 0 (mod 2^32), so only classic and the rows see it; rows: msd 2^32,
    # sensitive theta 2^20, resilient theta 2^4, two deviations of 2^31 each
    (5, [(1, 4, -(1 << 31)), (6, 4, -(1 << 31))], {"statistical2d": "ABC"}),
    # two 2^20 in different rows and columns: msd 2^21; sensitive theta 2^14.5, resilient 2^9.5 with
    # two deviations; approx A and B (2^21 > 2^20), not C
    (7, [(0, 0, 1 << 20), (4, 6, 1 << 20)], {"approx": "AB", "statistical": "ABC", "statistical2d": "ABC"}),
    # eight +8 in one row: columns msd 64 (theta 128 > 8), the row's e = 64 < 128 too
    (8, [(3, c, 8) for c in range(8)], {}),
    # msd 2^30: above every approx threshold; sensitive theta 2^19; resilient 2^5 but one deviation
    (10, [(7, 1, 1 << 30)], {"approx": "ABC", "statistical": "AB", "statistical2d": "AB"}),
    # two 2^12 in one row: msd 2^13, sensitive theta 2^10.5, resilient 2^13.5 (columns and the row)
    (12, [(2, 2, 1 << 12), (2, 5, 1 << 12)], {"approx": "A", "statistical": "AB", "statistical2d": "AB"}),
]
# every error of these tiles lies in one row or one column: correct fixes them in place
LOCATABLE = {1, 2, 3, 4, 8, 10, 12}


def expected_recovered(policy: str, site: str) -> set[int]:
    if policy in ("none", "clear"):
        return set()
    if policy in ("classic", "correct"):
        return {tile for tile, errors, _ in SCENARIOS if errors}
    return {tile for tile, _, flags in SCENARIOS if site in flags.get(policy, "")}


def scenario_errors(m: int, n: int) -> np.ndarray:
    err = np.zeros((m, n), dtype=np.int64)
    for tile, errors, _ in SCENARIOS:
        r0, c0 = tile // TILES_N * N, tile % TILES_N * N
        for r, c, value in errors:
            assert r0 + r < m and c0 + c < n
            err[r0 + r, c0 + c] = value
    return err


@pytest.mark.parametrize("name", sorted(POLICIES))
@pytest.mark.parametrize("site", sorted(SITES))
def test_decisions_match_hand_derived_rules(name, site):
    """Each tile is recovered exactly when the hand-derived table says so; every other tile is left
    as the fault made it; correct fixes the locatable tiles in place and recomputes the others."""
    component, layer = SITES[site]
    rng = np.random.default_rng(layer)
    x, w = operands(rng, 24, 64, 45)
    err = scenario_errors(24, 45)
    exact = int32_matmul(x, w)
    faulty = wrap_int32(exact.astype(np.int64) + err)
    protected = ProtectedGemm(SoftwareFaultAccelerator(AddErrors(err), N), name, profile())
    y = protected.gemm(x, w, site=GemmSite(layer, component, "prefill")).y

    recovered = expected_recovered(name, site)
    cost = protected.last_cost
    assert cost.tiles_flagged == len(recovered)
    if name == "correct":
        assert (cost.tiles_corrected, cost.tiles_recomputed) == (len(LOCATABLE), len(recovered - LOCATABLE))
    else:
        assert (cost.tiles_corrected, cost.tiles_recomputed) == (0, len(recovered))
    if name != "clear":  # clear zeroes out-of-range elements (its own test below)
        y_tiles, exact_tiles, faulty_tiles = (tiles_of(a, N) for a in (y, exact, faulty))
        for tile in range(len(y_tiles)):
            want = exact_tiles[tile] if tile in recovered else faulty_tiles[tile]
            assert np.array_equal(y_tiles[tile], want), tile


def test_column_statistics_miss_a_sign_bit_pair_the_rows_catch():
    """Two -2^31 errors in one column cancel modulo 2^32: the paper's column-only rule passes the tile."""
    rng = np.random.default_rng(5)
    x, w = operands(rng, 8, 32, 8)
    err = np.zeros((8, 8), dtype=np.int64)
    err[[0, 4], 5] = SIGN
    flags = {}
    for name in ("statistical", "statistical2d", "classic"):
        protected = ProtectedGemm(SoftwareFaultAccelerator(AddErrors(err), N), name, profile())
        y = protected.gemm(x, w, site=GemmSite(0, "o", "prefill")).y
        flags[name] = protected.last_cost.tiles_flagged
        assert protected.last_stats.tiles.msd[0] == 0 and protected.last_stats.tiles.row_freq[0] == 2
        assert np.array_equal(y, int32_matmul(x, w)) == bool(flags[name])
    assert flags == {"statistical": 0, "statistical2d": 1, "classic": 1}


def test_clear_zeroes_only_out_of_range_values():
    rng = np.random.default_rng(6)
    x, w = operands(rng, 16, 32, 16)
    err = np.zeros((16, 16), dtype=np.int64)
    err[1, 2] = 1 << 30  # far beyond |y| <= 32 * 128 * 128
    err[5, 7] = 3  # in range: invisible to clearance
    protected = ProtectedGemm(SoftwareFaultAccelerator(AddErrors(err), N), "clear", measure=True)
    y = protected.gemm(x, w).y
    exact = int32_matmul(x, w)
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
    y = protected.gemm(x, w, site=GemmSite(0, "q", "prefill")).y
    assert protected.last_stats.freq_eff == 4
    assert np.array_equal(y, int32_matmul(x, w)) == recovered
    assert protected.last_cost.tiles_flagged == (4 if recovered else 0)
