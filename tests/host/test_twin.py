"""The compiled twin against the numpy oracle `timed_dot`, bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from oracles import int32_matmul

from realm_hil.backends.reference import stats_against_exact
from realm_hil.backends.twin import TwinAccelerator
from realm_hil.stats import PolicyConfig
from realm_hil.sweep import wrong_tiles
from realm_hil.tiling import int32_gemm, plan_for, split_tiles, tile_operands
from realm_hil.timing import emulation, twin_kernel
from realm_hil.timing.device_profile import load_profile
from realm_hil.timing.emulation import timed_add, timed_dot
from realm_hil.timing.slack import first_error_clock, slack_table
from realm_hil.timing.twin_kernel import TwinBuildError, bench_twin, timed_checksums, timed_gemm

MASK = 0xFFFFFFFF
PROFILE = load_profile("pynq-z2")


def oracle(x: np.ndarray, w: np.ndarray, table: np.ndarray) -> np.ndarray:
    """timed_dot with output (m, j) on PE (m % n, j % n)."""
    n = table.shape[0]
    m, _ = x.shape
    per_element = np.clip(table, -1, 31)[np.arange(m) % n][:, np.arange(w.shape[1]) % n]
    return timed_dot(x[:, None, :], w.T[None, :, :], per_element)


def clock_for_median_slack(target: int) -> float:
    # the default die: the slow corner's delays at the nominal supply
    return 1000 / ((PROFILE.t_base_ns + (target + 0.5) * PROFILE.tau_ns_per_bit) * PROFILE.voltage_factor())


# Nominal, just past the first error, then deeper until almost every PE is all-stale.
CLOCKS = [
    PROFILE.nominal_clock_mhz,
    first_error_clock(PROFILE, 8, 0) * 1.01,
    clock_for_median_slack(25),
    clock_for_median_slack(15),
    clock_for_median_slack(5),
    clock_for_median_slack(0),
    160.0,
]


def random_problem(rng, max_dim=100):
    m, k, n = (int(v) for v in rng.integers(1, max_dim + 1, 3))
    x = rng.integers(-128, 128, size=(m, k), dtype=np.int8)
    w = rng.integers(-128, 128, size=(k, n), dtype=np.int8)
    return x, w


@pytest.mark.parametrize("clock", CLOCKS, ids=[f"{c:.1f}MHz" for c in CLOCKS])
def test_matches_oracle_across_clocks(clock):
    rng = np.random.default_rng(int(clock * 1000))
    for case in range(30):
        array_n = int(rng.choice([4, 8, 16]))
        table = slack_table(PROFILE, clock, array_n, seed=case)
        x, w = random_problem(rng, max_dim=48)
        np.testing.assert_array_equal(timed_gemm(x, w, table, array_n), oracle(x, w, table))


def test_clock_sweep_covers_edge_slacks():
    seen = set()
    for clock in CLOCKS:
        for seed in range(30):
            for n in (4, 8, 16):
                seen |= set(np.unique(slack_table(PROFILE, clock, n, seed)).tolist())
    assert {-1, 0, 30, 31} <= seen


@pytest.mark.parametrize("portable", [False, True], ids=["native", "portable"])
def test_every_slack_value(portable):
    # A 6 x 6 array holds each L in -1..31 at least once, spread over rows and columns.
    rng = np.random.default_rng(5)
    table = np.resize(np.arange(-1, 32), 36).reshape(6, 6)
    for _ in range(6):
        x, w = random_problem(rng)
        np.testing.assert_array_equal(timed_gemm(x, w, table, 6, portable=portable), oracle(x, w, table))


def test_large_array_and_tails():
    # n larger than the 32-column panels and shapes with ragged row blocks and column tails.
    rng = np.random.default_rng(9)
    for n, (m, k, cols) in [(32, (70, 23, 97)), (5, (13, 40, 33)), (1, (3, 17, 50)), (3, (1, 1, 1))]:
        table = rng.integers(-2, 34, size=(n, n))
        x = rng.integers(-128, 128, size=(m, k), dtype=np.int8)
        w = rng.integers(-128, 128, size=(k, cols), dtype=np.int8)
        np.testing.assert_array_equal(timed_gemm(x, w, table, n), oracle(x, w, table))


def test_nominal_is_plain_gemm():
    rng = np.random.default_rng(3)
    table = slack_table(PROFILE, PROFILE.nominal_clock_mhz, 8, 0)
    for m, k, n in [(64, 576, 96), (7, 1536, 33), (1, 1, 1)]:
        x = rng.integers(-128, 128, size=(m, k), dtype=np.int8)
        w = rng.integers(-128, 128, size=(k, n), dtype=np.int8)
        expect = (x.astype(np.int64) @ w.astype(np.int64)).astype(np.int32)
        np.testing.assert_array_equal(timed_gemm(x, w, table, 8), expect)


def onset_table(pes: str, n: int, seed: int) -> np.ndarray:
    """The slack table of die `seed` at a clock where one PE, a few, or all of them can err (checked)."""
    first = first_error_clock(PROFILE, n, seed)
    clock = {"one": math.nextafter(first, math.inf), "few": first + 4.0, "all": clock_for_median_slack(15)}[pes]
    table = slack_table(PROFILE, clock, n, seed)
    can_err = int((table < 31).sum())
    assert {"one": can_err == 1, "few": 1 < can_err < n * n, "all": can_err == n * n}[pes], can_err
    return table


# tiny, fewer rows or columns than the array, and neither a multiple of n
SPARSE_SHAPES = [(1, 1, 1), (1, 9, 3), (3, 40, 2), (7, 33, 9), (21, 150, 37), (45, 200, 83)]


@pytest.mark.parametrize("portable", [False, True], ids=["native", "portable"])
@pytest.mark.parametrize("pes", ["one", "few", "all"])
def test_exact_product_path_matches_oracle(pes, portable):
    """Given the exact product, the twin emulates only the PEs that can err; the result is the oracle's."""
    rng = np.random.default_rng(["one", "few", "all"].index(pes))
    for n, seed in [(4, 1), (8, 0), (16, 0)]:
        table = onset_table(pes, n, seed)
        wrong = 0
        for m, k, cols in SPARSE_SHAPES:
            # small operands keep the sums near zero, where the long carry chains of the onset are
            # (LLM accumulators cross zero all the time); full-range ones exercise every bit
            for low, high in [(-2, 3), (-128, 128)]:
                x = rng.integers(low, high, size=(m, k), dtype=np.int8)
                w = rng.integers(low, high, size=(k, cols), dtype=np.int8)
                exact = int32_matmul(x, w)
                want = oracle(x, w, table)
                got = timed_gemm(x, w, table, n, exact=exact, portable=portable)
                np.testing.assert_array_equal(got, want)
                np.testing.assert_array_equal(timed_gemm(x, w, table, n, portable=portable), want)
                wrong += int(np.count_nonzero(want != exact))
        assert wrong > 0, (n, seed)  # the PEs that can err did err


@pytest.mark.parametrize("portable", [False, True], ids=["native", "portable"])
def test_exact_product_path_touches_only_pes_that_can_err(portable):
    # Every L in -1..31 (as above); `exact` holds a sentinel so elements taken from it are visible.
    rng = np.random.default_rng(6)
    table = np.resize(np.arange(-1, 32), 36).reshape(6, 6)
    for m, k, cols in [(40, 70, 53), (5, 3, 4)]:
        x = rng.integers(-128, 128, size=(m, k), dtype=np.int8)
        w = rng.integers(-128, 128, size=(k, cols), dtype=np.int8)
        sentinel = np.full((m, cols), 123456789, dtype=np.int32)
        got = timed_gemm(x, w, table, 6, exact=sentinel, portable=portable)
        can_err = (table < 31)[np.arange(m) % 6][:, np.arange(cols) % 6]
        np.testing.assert_array_equal(got[~can_err], 123456789)
        np.testing.assert_array_equal(got[can_err], oracle(x, w, table)[can_err])
        assert (sentinel == 123456789).all()  # the caller's array is not written


def test_empty_dimensions():
    table = np.full((4, 4), 10)
    assert timed_gemm(np.zeros((0, 5), np.int8), np.zeros((5, 3), np.int8), table, 4).shape == (0, 3)
    out = timed_gemm(np.zeros((2, 0), np.int8), np.zeros((0, 3), np.int8), table, 4)
    np.testing.assert_array_equal(out, np.zeros((2, 3), np.int32))


def checksum_oracle(x: np.ndarray, w: np.ndarray, y: np.ndarray, check_slack: np.ndarray, n: int):
    """emulation.timed_checksums on the zero-padded tiles of the GEMM, in row-major tile order."""
    plan = plan_for(x, w, n)
    x_panels, w_panels = tile_operands(x, w, plan)
    tiles = np.arange(plan.count)
    y_pad = np.zeros((plan.tiles_m * n, plan.tiles_n * n), dtype=np.int32)
    y_pad[: plan.m, : plan.n] = y
    return emulation.timed_checksums(x_panels[tiles // plan.tiles_n].transpose(0, 2, 1),
                                     w_panels[tiles % plan.tiles_n], split_tiles(y_pad, plan), check_slack)


@pytest.mark.parametrize("portable", [False, True], ids=["native", "portable"])
def test_checksums_match_oracle(portable):
    # n = 11 holds each L in -1..31 exactly once; the others take random L and ragged tails
    rng = np.random.default_rng(13)
    for n, table in [(11, rng.permutation(np.arange(-1, 32)).reshape(3, 11)), (4, rng.integers(-3, 40, (3, 4))),
                     (8, rng.integers(10, 32, (3, 8))), (32, rng.integers(-1, 32, (3, 32)))]:
        for _ in range(3):
            x, w = random_problem(rng, max_dim=70)
            # array results with errors, and arbitrary words, so d_c sums every kind of value
            if rng.random() < 0.5:
                y = timed_gemm(x, w, rng.integers(15, 32, (n, n)), n)
            else:
                y = rng.integers(-(2**31), 2**31, (x.shape[0], w.shape[1]), dtype=np.int64).astype(np.int32)
            d, e = timed_checksums(x, w, y, table, n, portable=portable)
            want_d, want_e = checksum_oracle(x, w, y, table, n)
            np.testing.assert_array_equal(d, want_d)
            np.testing.assert_array_equal(e, want_e)


def test_exact_checksums_give_the_checksum_identity():
    rng = np.random.default_rng(14)
    for _ in range(5):
        x, w = random_problem(rng)
        y = timed_gemm(x, w, rng.integers(18, 32, (8, 8)), 8)
        d, e = timed_checksums(x, w, y, np.full((3, 8), 31), 8)
        stats = stats_against_exact(y, int32_gemm(x, w), plan_for(x, w, 8), PolicyConfig())
        np.testing.assert_array_equal(d, stats.col_dev)
        np.testing.assert_array_equal(e, stats.row_dev)


def test_emulated_checks_change_only_the_deviations():
    rng = np.random.default_rng(15)
    x = rng.integers(-128, 128, (32, 256), dtype=np.int8)
    w = rng.integers(-128, 128, (256, 64), dtype=np.int8)
    exact = int32_gemm(x, w)
    with TwinAccelerator(seed=3) as plain, TwinAccelerator(seed=3, emulate_checks=True) as checked:
        assert checked.info()["emulate_checks"] and not plain.info()["emulate_checks"]
        for acc in (plain, checked):
            np.testing.assert_array_equal(acc.gemm(x, w).y, exact)
            assert acc.last_stats.tiles_err == 0
        # near the onset the checksum accumulators, summing larger values, err on tiles whose
        # results are still exact: false alarms; the PE draws are the same with or without them
        for acc in (plain, checked):
            acc.set_clock(124.0)
        y = plain.gemm(x, w).y
        np.testing.assert_array_equal(checked.gemm(x, w).y, y)
        exact_tiles = ~wrong_tiles(y, exact, 8)
        assert not (plain.last_stats.tiles.any_err & exact_tiles).any()
        assert (checked.last_stats.tiles.any_err & exact_tiles).any()
        # every bit stale: all results are 0, and so are checksums that never leave their reset value
        for acc in (plain, checked):
            acc.set_clock(200.0)
            assert not acc.gemm(x, w).y.any()
        assert plain.last_stats.tiles.any_err.all()
        assert not checked.last_stats.tiles.any_err.any()


def scalar_timed_dot(xs, ws, slack: int) -> int:
    """The model written out literally on Python ints: late = C & (P << 1) & ... & (P << L)."""
    acc = 0
    for x, w in zip(xs, ws, strict=True):
        prod = (x * w) & MASK
        total = (acc + prod) & MASK
        if slack < 0:
            continue
        prop = acc ^ prod
        late = (total ^ prop) if slack < 31 else 0
        for shift in range(1, slack + 1):
            if not late:
                break
            late &= (prop << shift) & MASK
        acc = (total & ~late) | (acc & late)
    return acc - (1 << 32) if acc >> 31 else acc


def test_scalar_reference_agrees_with_timed_add():
    rng = np.random.default_rng(0)
    a = rng.integers(-(2**31), 2**31, size=3000, dtype=np.int64).astype(np.int32)
    b = rng.integers(-(2**14), 2**14 + 1, size=3000).astype(np.int32)
    slack = rng.integers(-1, 32, size=3000)
    got = timed_add(a, b, slack)
    for i in range(0, 3000, 7):
        acc = int(a[i]) & MASK
        prod = int(b[i]) & MASK
        total = (acc + prod) & MASK
        if slack[i] < 0:
            expect = acc
        else:
            prop = acc ^ prod
            late = total ^ prop if slack[i] < 31 else 0
            for shift in range(1, slack[i] + 1):
                late &= (prop << shift) & MASK
            expect = (total & ~late) | (acc & late)
        assert int(got[i]) & MASK == expect


def test_accumulator_wraps_int32():
    # Products near +2^14 over 135k steps push every accumulator past 2^31.
    rng = np.random.default_rng(2)
    k = 135_000
    x = np.full((1, k), -128, dtype=np.int8)
    w = np.where(rng.random((k, 7)) < 0.5, -128, -127).astype(np.int8)
    table = np.array([[31, -1, 0, 6, 14, 22, 30]] * 7)
    got = timed_gemm(x, w, table, 7)
    exact = (x.astype(np.int64) @ w.astype(np.int64)).astype(np.int32)
    assert (x.astype(np.int64) @ w.astype(np.int64) > 2**31).all()
    assert got[0, 0] == exact[0, 0] and exact[0, 0] < 0
    for j in range(7):
        assert got[0, j] == scalar_timed_dot(x[0].tolist(), w[:, j].tolist(), int(table[0, j]))


def test_rejects_bad_inputs():
    x = np.zeros((2, 3), np.int8)
    w = np.zeros((3, 4), np.int8)
    table = np.zeros((4, 4), np.int8)
    with pytest.raises(ValueError, match="int8"):
        timed_gemm(x.astype(np.int16), w, table, 4)
    with pytest.raises(ValueError, match="inner dimensions"):
        timed_gemm(x, np.zeros((2, 4), np.int8), table, 4)
    with pytest.raises(ValueError, match="slack"):
        timed_gemm(x, w, table, 8)
    with pytest.raises(ValueError, match="slack"):
        timed_gemm(x, w, table.astype(float), 4)
    with pytest.raises(ValueError, match="exact"):
        timed_gemm(x, w, table, 4, exact=np.zeros((2, 4), np.int64))
    with pytest.raises(ValueError, match="exact"):
        timed_gemm(x, w, table, 4, exact=np.zeros((4, 2), np.int32))
    y = np.zeros((2, 4), np.int32)
    with pytest.raises(ValueError, match="check slack"):
        timed_checksums(x, w, y, table, 4)
    with pytest.raises(ValueError, match="result of the GEMM"):
        timed_checksums(x, w, y.T, np.zeros((3, 4), np.int8), 4)


def test_build_failure_names_log(tmp_path, monkeypatch):
    monkeypatch.setenv("REALM_HIL_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", "false")
    monkeypatch.setattr(twin_kernel, "_KERNELS", {})
    with pytest.raises(TwinBuildError, match=r"build failed .*see .*twin-.*\.log") as info:
        twin_kernel.load_kernel()
    assert "\n" not in str(info.value)
    monkeypatch.setenv("CXX", "no-such-compiler-xyz")
    with pytest.raises(TwinBuildError, match="not found"):
        twin_kernel.load_kernel()


def test_bench_reports_timed_run():
    report = bench_twin(((16, 64, 48),), repeats=1)
    assert report.profile == "pynq-z2"
    assert min(report.slack_histogram) >= 0 and max(report.slack_histogram) < 31
    assert sum(report.slack_histogram.values()) == report.array_n**2
    (result,) = report.results
    assert (result.m, result.k, result.n) == (16, 64, 48) and result.mac_per_s > 0
