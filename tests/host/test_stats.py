import numpy as np
import pytest

from realm_hil.stats import (
    GemmStats,
    PolicyConfig,
    decode_stats_words,
    encode_stats_words,
    mitchell_log2_q8,
    theta_from_msd,
    tile_stats,
    tile_stats_sparse,
)


def _scalar_model(d, e, p):
    """Straight-line transcription of rtl/README.md for one tile, with Python integers."""
    absd = [abs(int(v)) for v in d]
    msd = sum(absd)
    freq = sum(v != 0 for v in d)
    row_freq = sum(v != 0 for v in e)
    hist = [0] * 32
    for a in absd:
        if a:
            hist[a.bit_length() - 1] += 1
    if msd == 0:
        lg = 0
    else:
        ex = msd.bit_length() - 1
        lg = (ex << 8) | (((msd << 8) >> ex) & 0xFF)
    t = ((p.alpha_q8 * lg) >> 8) + p.beta_q8
    if t < 0:
        theta = 0
    elif (t >> 8) >= 32:
        theta = 0xFFFFFFFF
    else:
        theta = ((256 + (t & 0xFF)) << (t >> 8)) >> 8
    freq_eff = sum(a > theta for a in absd)
    any_err = freq != 0 or row_freq != 0
    recover = {"off": False, "classic": any_err, "approx": msd > p.msd_thresh,
               "statistical": freq_eff >= p.freq_min}[p.mode]
    return dict(msd=msd, freq=freq, row_freq=row_freq, hist=hist, theta=theta, freq_eff=freq_eff,
                any_err=any_err, recover=recover, max_abs=max(absd))


@pytest.mark.parametrize("seed", range(20))
def test_vectorized_model_matches_scalar_definition(seed):
    rng = np.random.default_rng(seed)
    tiles, n = 40, 8
    d = np.zeros((tiles, n), dtype=np.int64)
    mask = rng.random((tiles, n)) < rng.random()
    mags = 2 ** rng.integers(0, 32, size=(tiles, n))
    d[mask] = (rng.integers(1, 2**31, size=(tiles, n)) % mags + 1)[mask] * rng.choice([-1, 1], size=(tiles, n))[mask]
    d[0, 0] = -(2**31)
    d = d.astype(np.int32)
    e = np.roll(d, 1, axis=1)
    mode = ["off", "classic", "approx", "statistical"][seed % 4]
    policy = PolicyConfig(mode, int(rng.integers(-512, 512)), int(rng.integers(-4096, 8192)),
                          int(rng.integers(0, 9)), int(rng.integers(0, 2**40)))
    s = tile_stats(d, e, policy)
    for t in range(tiles):
        ref = _scalar_model(d[t], e[t], policy)
        for key, value in ref.items():
            got = getattr(s, key)[t]
            assert (list(got) if key == "hist" else int(got)) == (value if key == "hist" else int(value)), (key, t)


def test_words_round_trip():
    rng = np.random.default_rng(3)
    d = rng.integers(-(2**31), 2**31, size=(10, 16)).astype(np.int32)
    s = tile_stats(d, d, PolicyConfig("classic"), tags=np.arange(10) + 65530)
    assert s.equals(decode_stats_words(encode_stats_words(s)))
    assert list(s.tag[-4:]) == [0, 1, 2, 3]


def test_mitchell_and_theta_edges():
    assert list(mitchell_log2_q8(np.array([0, 1, 2, 3, 2**63], dtype=np.uint64))) == [0, 0, 256, 384, 63 << 8]
    msd = np.array([0, 1, 2**40], dtype=np.uint64)
    assert list(theta_from_msd(msd, 256, 0)) == [1, 1, 0xFFFFFFFF]
    assert list(theta_from_msd(msd, 0, -1)) == [0, 0, 0]


def test_policy_validation():
    with pytest.raises(ValueError, match="policy mode"):
        PolicyConfig("sometimes")
    with pytest.raises(ValueError, match="alpha_q8"):
        PolicyConfig("statistical", alpha_q8=1 << 15)


@pytest.mark.parametrize("mode", ["off", "classic", "approx", "statistical"])
def test_sparse_equals_dense(mode):
    rng = np.random.default_rng(5)
    d = np.zeros((300, 8), dtype=np.int32)
    d[rng.choice(300, 9, replace=False), rng.integers(0, 8, 9)] = rng.integers(-(2**31), 2**31, 9)
    e = np.roll(d, 3, axis=1)
    policy = PolicyConfig(mode, 128, 512, 0 if mode == "statistical" else 2, 1000)
    assert tile_stats_sparse(d, e, policy).equals(tile_stats(d, e, policy))
    # the totals, taken from the deviating tiles and the clean row without per-tile arrays (freq_min = 0:
    # every clean tile asks for recovery too)
    assert GemmStats(tile_stats_sparse(d, e, policy)).totals() == GemmStats(tile_stats(d, e, policy)).totals()
    clean = np.zeros_like(d)
    assert GemmStats(tile_stats_sparse(clean, clean, policy)).totals() == \
        GemmStats(tile_stats(clean, clean, policy)).totals()
