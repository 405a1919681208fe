"""The twin and the Verilated RTL emulate timing errors identically: outputs and every statistic,
with exact checksums (the default) and with the checksum accumulators emulated too (EMU_CHECKS)."""

import math

import numpy as np
import pytest

import realm_hil
from realm_hil.benchmarks import twin_vs_rtl
from realm_hil.stats import PolicyConfig
from realm_hil.sweep import wrong_tiles
from realm_hil.tiling import int32_gemm
from realm_hil.timing.device_profile import load_profile
from realm_hil.timing.slack import first_error_clock, process_factor, slack_table
from realm_hil.timing.thermal import AmbientTrace, HeldJunction, ThermalEnvironment
from realm_hil.timing.twin_kernel import timed_gemm

# nominal, first errors, onset band, heavy, all-stale (pynq-z2 at its nominal 1.00 V, the slowest die:
# first errors ~116 MHz, all stale ~162)
CLOCKS = [100.0, 120.0, 124.0, 132.0, 142.0, 170.0]


@pytest.fixture(scope="module")
def pair():
    with realm_hil.open_accelerator("sim", seed=7) as sim, realm_hil.open_accelerator("twin", seed=7) as twin:
        policy = PolicyConfig.from_floats("statistical", alpha=0.5, beta=4.0, freq_min=2)
        sim.set_policy(policy)
        twin.set_policy(policy)
        yield sim, twin


@pytest.mark.sim
@pytest.mark.parametrize("mhz", CLOCKS)
def test_twin_matches_rtl_bit_for_bit(pair, mhz):
    sim, twin = pair
    assert sim.set_clock(mhz) == twin.set_clock(mhz) == mhz
    rng = np.random.default_rng(int(mhz))
    errors = 0
    for _ in range(10):
        m, k, n = rng.integers(1, 40, size=3)
        k = int(k) * 4  # long enough accumulations to cross zero many times
        x = rng.integers(-128, 128, size=(m, k), dtype=np.int8)
        w = rng.integers(-128, 128, size=(k, n), dtype=np.int8)
        y_sim, y_twin = sim.gemm(x, w).y, twin.gemm(x, w).y
        assert np.array_equal(y_sim, y_twin)
        assert sim.last_stats.tiles.equals(twin.last_stats.tiles)
        assert np.array_equal(sim.last_stats.col_dev, twin.last_stats.col_dev)
        assert np.array_equal(sim.last_stats.row_dev, twin.last_stats.row_dev)
        errors += int(np.count_nonzero(y_sim != int32_gemm(x, w)))
    assert (errors == 0) == (mhz == CLOCKS[0])


def onset_clock(pes: str, seed: int) -> float:
    """pynq-z2 clocks where one PE of die `seed`, a few, and all of them can err."""
    profile = load_profile("pynq-z2")
    first = first_error_clock(profile, 8, seed)
    # the median PE at L = 15 (the default die: slow-corner delays at the nominal supply)
    heavy = 1000 / ((profile.t_base_ns + 15.5 * profile.tau_ns_per_bit) * profile.voltage_factor())
    return {"one": math.nextafter(first, math.inf), "few": first + 4.0, "all": heavy}[pes]


@pytest.mark.sim
@pytest.mark.parametrize("pes", ["one", "few", "all"])
def test_exact_product_path_matches_rtl(pair, pes):
    """The twin kernel given the exact product emulates only the PEs that can err: still the RTL's result."""
    sim, _ = pair
    mhz = onset_clock(pes, seed=7)
    assert sim.set_clock(mhz, force=True) == mhz
    table = slack_table("pynq-z2", mhz, 8, seed=7)
    can_err = int((table < 31).sum())
    assert {"one": can_err == 1, "few": 1 < can_err < 64, "all": can_err == 64}[pes], can_err
    rng = np.random.default_rng(can_err)
    errors = 0
    for m, k, n in [(1, 1, 1), (5, 3, 12), (19, 256, 27), (40, 300, 33)]:
        # near-zero sums (as in an LLM's accumulators) reach the long carry chains of the onset
        for low, high in [(-2, 3), (-128, 128)]:
            x = rng.integers(low, high, size=(m, k), dtype=np.int8)
            w = rng.integers(low, high, size=(k, n), dtype=np.int8)
            exact = int32_gemm(x, w)
            y_sim = sim.gemm(x, w).y
            assert np.array_equal(timed_gemm(x, w, table, 8, exact=exact), y_sim)
            errors += int(np.count_nonzero(y_sim != exact))
    assert errors > 0


@pytest.mark.sim
def test_bench_twin_reports_onset_and_heavy_cases(monkeypatch):
    shapes = ((9, 40, 20), (16, 64, 8))
    onset, heavy = twin_vs_rtl.bench_twin_vs_rtl(shapes=shapes, repeats=1)
    # pynq-z2, 8 x 8, seed 0: one PE can err 2 MHz past the first error, all of them when heavily overclocked
    assert (onset["name"], onset["pes_can_err"], onset["sparse"]) == ("onset", 1, True)
    assert (heavy["name"], heavy["pes_can_err"], heavy["sparse"]) == ("heavy", 64, False)
    for case in (onset, heavy):
        assert case["macs"] == 9 * 40 * 20 + 16 * 64 * 8
        assert min(case[key] for key in case if key.endswith("_per_s")) > 0
    # the check against the RTL can fail
    monkeypatch.setattr(twin_vs_rtl, "timed_gemm", lambda x, w, *_, **__: np.zeros((len(x), w.shape[1]), np.int32))
    with pytest.raises(RuntimeError, match="disagree"):
        twin_vs_rtl.bench_twin_vs_rtl(shapes=shapes, repeats=1)


@pytest.fixture(scope="module")
def checked_pair():
    with realm_hil.open_accelerator("sim", seed=11, emulate_checks=True) as sim, \
            realm_hil.open_accelerator("twin", seed=11, emulate_checks=True) as twin:
        policy = PolicyConfig.from_floats("statistical", alpha=0.5, beta=4.0, freq_min=2)
        sim.set_policy(policy)
        twin.set_policy(policy)
        yield sim, twin


# nominal, checksum-only onset (false alarms), onset band, heavy, all-stale (every error missed)
CHECKED_CLOCKS = [100.0, 120.0, 124.0, 132.0, 142.0, 170.0]


@pytest.mark.sim
@pytest.mark.parametrize("mhz", CHECKED_CLOCKS)
def test_twin_matches_rtl_with_emulated_checks(checked_pair, mhz):
    sim, twin = checked_pair
    assert sim.info()["emulate_checks"] and twin.info()["emulate_checks"]
    assert sim.set_clock(mhz) == twin.set_clock(mhz) == mhz
    rng = np.random.default_rng(1000 + int(mhz))
    errors = flagged = false_alarms = 0
    for _ in range(20):
        m, k, n = rng.integers(1, 40, size=3)
        k = int(k) * 4
        x = rng.integers(-128, 128, size=(m, k), dtype=np.int8)
        w = rng.integers(-128, 128, size=(k, n), dtype=np.int8)
        y_sim, y_twin = sim.gemm(x, w).y, twin.gemm(x, w).y
        assert np.array_equal(y_sim, y_twin)
        assert sim.last_stats.tiles.equals(twin.last_stats.tiles)
        assert np.array_equal(sim.last_stats.col_dev, twin.last_stats.col_dev)
        assert np.array_equal(sim.last_stats.row_dev, twin.last_stats.row_dev)
        assert sim.driver.read_totals() == sim.last_stats.totals() == twin.last_stats.totals()
        exact = int32_gemm(x, w)
        errors += int(np.count_nonzero(y_sim != exact))
        flagged += sim.last_stats.tiles_err
        false_alarms += int(np.count_nonzero(sim.last_stats.tiles.any_err & ~wrong_tiles(y_sim, exact, 8)))
    assert (errors == 0 and flagged == 0) == (mhz == CHECKED_CLOCKS[0])
    if mhz == 120.0:
        assert false_alarms > 0
    if mhz == 170.0:
        assert flagged == 0 < errors


def _pvt_operands(rng, zero_crossing: bool) -> tuple[np.ndarray, np.ndarray]:
    m, k, n = (int(v) for v in rng.integers(4, 33, size=3))
    k *= 4
    x = rng.integers(-128, 128, size=(m, k), dtype=np.int8)
    w = rng.integers(-128, 128, size=(k, n), dtype=np.int8)
    if zero_crossing:
        # every running sum of these rows and columns changes sign at each step: 10100, -100, 10000, -200, ...
        x[: m // 2] = np.resize(np.array([100, -100], dtype=np.int8), k)
        w[:, : n // 2] = np.resize(np.array([101, 102], dtype=np.int8), (k // 2, 2)).reshape(-1, 1)[:k]
    return x, w


# (seed, environment, supply, emulated checks): dies of different process factors, junctions held
# cold and hot, an undervolt and an overvolt, and a die warming up in a ramping ambient whose L
# tables are recomputed between GEMMs (time compressed so a few GEMMs span minutes of heating)
PVT_CASES = [
    (3, HeldJunction(5.0), None, False),
    (5, HeldJunction(80.0), 0.97, False),
    (6, HeldJunction(45.0), 1.04, True),
    (8, ThermalEnvironment(AmbientTrace.ramp(25.0, 70.0, 120.0), time_compression=2e6, start_tj_c=25.0), None, False),
]


@pytest.mark.sim
@pytest.mark.parametrize(("seed", "environment", "voltage", "checks"), PVT_CASES)
def test_twin_matches_rtl_at_pvt_operating_points(seed, environment, voltage, checks):
    """The seed's die in its environment: sim and twin hold the same L tables after every GEMM
    (the junction moves with the cycles each GEMM spends) and agree bit for bit on outputs and
    statistics, on random and on zero-crossing operands, from its first errors to heavy errors."""
    die = {"seed": seed, "environment": environment, "voltage_v": voltage, "emulate_checks": checks}
    with realm_hil.open_accelerator("sim", **die) as sim, realm_hil.open_accelerator("twin", **die) as twin:
        start = twin.die
        assert sim.die == start and start.process_factor == process_factor("pynq-z2", seed)
        edge = first_error_clock("pynq-z2", 8, seed, voltage, process=start.process_factor, tj_c=start.tj_c)
        rng = np.random.default_rng(seed)
        errors, table_temperatures = 0, {start.table_tj_c}
        for mhz in (edge * 1.03, edge * 1.1, edge * 1.25):
            assert sim.set_clock(mhz) == twin.set_clock(mhz) == mhz
            for index in range(6):
                x, w = _pvt_operands(rng, zero_crossing=index % 2 == 1)
                r_sim, r_twin = sim.gemm(x, w), twin.gemm(x, w)
                assert np.array_equal(r_sim.y, r_twin.y)
                assert r_sim.stats.tiles.equals(r_twin.stats.tiles)
                assert np.array_equal(r_sim.stats.col_dev, r_twin.stats.col_dev)
                assert np.array_equal(r_sim.stats.row_dev, r_twin.stats.row_dev)
                assert sim.die == twin.die
                errors += int(np.count_nonzero(r_sim.y != int32_gemm(x, w)))
                table_temperatures.add(twin.die.table_tj_c)
        assert errors > 0
        if isinstance(environment, ThermalEnvironment):
            assert len(table_temperatures) > 5 and twin.die.tj_c > start.tj_c + 20
        else:
            assert table_temperatures == {environment.tj_c}
