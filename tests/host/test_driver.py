"""AccelDriver on the Verilated accelerator: exact GEMMs, hardware statistics, errors and recovery."""

import numpy as np
import pytest

from realm_hil import regmap
from realm_hil.backends.pynq_backend import open_sim
from realm_hil.driver import (
    AccelDriver,
    AccelTimeoutError,
    IncompatibleAccelerator,
    StreamError,
    check_identity,
    check_tags,
)
from realm_hil.errors import InputError, RealmError
from realm_hil.sim.device import ACCEL_BASE
from realm_hil.stats import GemmStats, PolicyConfig, tile_stats
from realm_hil.tiling import (
    assemble,
    exact_tiles,
    int32_gemm,
    pack_tiles,
    plan_for,
    reference_deviations,
    tile_operands,
)

pytestmark = pytest.mark.sim

CYCLE_BUDGET = 250_000  # per random shape, so 100+ shapes stay within a few minutes
MINOR = regmap.VERSION_VALUE & 0xFFFF


@pytest.fixture(scope="module")
def accel():
    acc = open_sim(8)
    yield acc
    acc.close()


@pytest.fixture
def driver(accel):
    yield accel.driver
    accel.driver.mmio.write(regmap.CONFIG, 0)
    accel.set_policy(PolicyConfig())


def _operands(rng, m, k, n):
    return rng.integers(-128, 128, (m, k), dtype=np.int8), rng.integers(-128, 128, (k, n), dtype=np.int8)


def _random_shapes(count, seed=7):
    """Log-uniform dimensions in 1..700 (mostly small), plus each dimension at its maximum once."""
    rng = np.random.default_rng(seed)
    shapes = [(700, 3, 5), (2, 700, 9), (4, 5, 700)]
    while len(shapes) < count:
        m, k, n = np.exp(rng.uniform(0, np.log(700), 3)).astype(int).clip(1, 700)
        if -(-m // 8) * -(-n // 8) * (k + 1) <= CYCLE_BUDGET:
            shapes.append((int(m), int(k), int(n)))
    return shapes


def test_random_shapes_are_bit_identical(accel):
    rng = np.random.default_rng(3)
    for m, k, n in _random_shapes(110):
        x, w = _operands(rng, m, k, n)
        np.testing.assert_array_equal(accel.gemm(x, w).y, int32_gemm(x, w), err_msg=f"shape {m}x{k}x{n}")
        assert accel.last_stats.n_tiles == -(-m // 8) * -(-n // 8)
        assert accel.last_stats.tiles_err == 0


def test_longest_k_fills_the_accumulator_and_one_more_is_refused(accel):
    """K = 131071 products of (-128)(-128) sum to 2^31 - 2^14, the top of int32: exact, every bit but the
    sign in use. One product more could wrap to -2^31 unflagged, so it is refused before it runs."""
    k = (1 << 31) // (128 * 128) - 1
    x = np.full((3, k), -128, dtype=np.int8)
    w = np.full((k, 5), -128, dtype=np.int8)
    assert (accel.gemm(x, w).y == 2**31 - 2**14).all()
    with pytest.raises(InputError, match="overflow"):
        accel.gemm(np.full((3, k + 1), -128, np.int8), np.full((k + 1, 5), -128, np.int8))


def test_totals_registers_equal_the_sum_of_tile_stats(driver):
    rng = np.random.default_rng(5)
    _inject(driver, rng)
    result = driver.gemm(*_operands(rng, 40, 33, 30))
    assert driver.read_totals() == GemmStats(result.tiles).totals()
    assert driver.read_totals()["tiles_err"] > 0


@pytest.mark.parametrize(
    "policy",
    [
        PolicyConfig("classic"),
        PolicyConfig("approx", msd_thresh=1 << 20),
        PolicyConfig("statistical", alpha_q8=128, beta_q8=512, freq_min=3),
    ],
    ids=lambda p: p.mode,
)
def test_injected_errors_show_up_in_stats_exactly(driver, policy):
    rng = np.random.default_rng(11)
    masks = _inject(driver, rng)
    driver.set_policy(policy)
    x, w = _operands(rng, 21, 17, 19)
    result = driver.gemm(x, w)
    plan = plan_for(x, w, 8)
    exact = exact_tiles(x, w, plan)
    observed = exact ^ masks[None]
    np.testing.assert_array_equal(result.y, assemble(observed, plan))
    d, e = reference_deviations(observed, exact)
    np.testing.assert_array_equal(result.col_dev, d)
    np.testing.assert_array_equal(result.row_dev, e)
    expected = tile_stats(d, e, policy, tags=result.tiles.tag)
    assert result.tiles.equals(expected)
    assert result.tiles.any_err.all()


def _inject(driver, rng):
    """Random XOR masks on a few PEs of every tile; returns them as (n, n) int32."""
    n = driver.array_n
    masks = np.zeros((n, n), dtype=np.uint32)
    hits = rng.choice(n * n, size=5, replace=False)
    masks.flat[hits] = rng.integers(1, 1 << 32, size=5, dtype=np.uint64).astype(np.uint32)
    masks.flat[hits[0]] = 1 << 31  # the most negative deviation: |d| must read as 2^31
    driver.mmio.write(regmap.INJ_TABLE_BASE, masks.astype("<u4").tobytes())
    driver.mmio.write(regmap.CONFIG, 1 << regmap.CONFIG_INJ_EN[1])
    return masks.view(np.int32)


def test_hung_transfer_times_out_and_leaves_the_accelerator_usable(driver, monkeypatch):
    rng = np.random.default_rng(13)
    x, w = _operands(rng, 64, 200, 64)
    arm = driver.dma.recvchannel.transfer
    # Room for one result beat only: the results back up, then the operands, and MM2S never ends.
    monkeypatch.setattr(driver.dma.recvchannel, "transfer", lambda buf, **kw: arm(buf, nbytes=32))
    monkeypatch.setattr(driver, "timeout_s", 1.0)
    with pytest.raises(AccelTimeoutError, match=r"tiles 0\.\.63 of a 64x200x64 GEMM \(MM2S") as excinfo:
        driver.gemm(x, w)
    assert isinstance(excinfo.value, TimeoutError)
    assert (excinfo.value.first_tile, excinfo.value.stop_tile) == (0, 64)
    monkeypatch.undo()
    np.testing.assert_array_equal(driver.gemm(x, w).y, int32_gemm(x, w))


@pytest.mark.parametrize(
    "ident, version, match",
    [
        (0xDEADBEEF, regmap.VERSION_VALUE, "ID reads 0xdeadbeef"),
        (regmap.ID_VALUE, regmap.VERSION_VALUE + (1 << 16), f"version 2.{MINOR} is not supported"),
        (regmap.ID_VALUE, regmap.VERSION_VALUE + 1, f"version 1.{MINOR + 1} is not supported"),
    ],
)
def test_mismatched_identity_is_refused(accel, monkeypatch, ident, version, match):
    device = accel.driver.device
    real_read = device.read_registers
    fake = {ACCEL_BASE + regmap.ID: ident, ACCEL_BASE + regmap.VERSION: version}

    def read_registers(address, length):
        if address in fake:
            return fake[address].to_bytes(4, "little")
        return real_read(address, length)

    monkeypatch.setattr(device, "read_registers", read_registers)
    with pytest.raises(IncompatibleAccelerator, match=match):
        AccelDriver(device.ip_dict[regmap.BD_CELLS["accelerator"]], device.ip_dict[regmap.BD_CELLS["dma"]])


def test_older_minor_version_is_accepted():
    check_identity(regmap.ID_VALUE, regmap.VERSION_VALUE & 0xFFFF0000)


@pytest.mark.parametrize(
    "got, match",
    [
        ([5, 6, 8], "lost 1 result tiles, tags \\[7\\]"),
        ([5, 6, 6, 7], "duplicated result tiles, tags \\[6\\]"),
        ([5, 7, 6, 8], "out of order, first mismatch at tile 1"),
        ([1, 2, 3, 4], "unexpected tags \\[1, 2, 3, 4\\]"),
    ],
)
def test_echoed_tag_errors_are_named(got, match):
    with pytest.raises(StreamError, match=match):
        check_tags(np.array(got), np.arange(5, 9), 0)


def test_check_slack_table_needs_emulated_checks(driver):
    assert not driver.emu_checks
    with pytest.raises(RealmError, match="EMU_CHECKS=0"):
        driver.write_check_slack_table(np.full((3, 8), 31))


def test_check_slack_table_reaches_the_checksums():
    acc = open_sim(8, emulate_checks=True)
    try:
        driver = acc.driver
        assert driver.emu_checks and acc.info()["emulate_checks"]
        with pytest.raises(ValueError, match=r"\(3, 8\)"):
            driver.write_check_slack_table(np.full((8, 8), 31))
        table = np.full((3, 8), 31)
        table[0, 5] = -1  # the accumulator of -r_5 never leaves 0, so d_5 = o_5
        driver.write_check_slack_table(table)
        driver.enable_timing_emulation(True)
        for i, value in enumerate(table.ravel()):
            assert driver.mmio.read(regmap.CK_L_TABLE_BASE + 4 * i) == value & 0xFFFFFFFF
        rng = np.random.default_rng(18)
        x, w = _operands(rng, 8, 64, 8)
        result = driver.gemm(x, w)
        exact = int32_gemm(x, w)
        np.testing.assert_array_equal(result.y, exact)
        np.testing.assert_array_equal(result.col_dev[0], np.where(np.arange(8) == 5, exact.sum(axis=0), 0))
        assert not result.row_dev.any()
    finally:
        acc.close()


def test_slack_table_reaches_the_pes(driver):
    rng = np.random.default_rng(17)
    x, w = _operands(rng, 16, 64, 16)
    table = np.full((8, 8), 31)
    table[2, 3] = -1  # every bit late: PE (2, 3) keeps the 0 it starts each tile with
    driver.write_slack_table(table)
    driver.mmio.write(regmap.CONFIG, 1 << regmap.CONFIG_TIMING_EN[1])
    try:
        result = driver.gemm(x, w)
    finally:
        driver.write_slack_table(np.full((8, 8), 31))
    plan = plan_for(x, w, 8)
    exact = exact_tiles(x, w, plan)
    observed = exact.copy()
    observed[:, 2, 3] = 0
    np.testing.assert_array_equal(result.y, assemble(observed, plan))
    d, e = reference_deviations(observed, exact)
    assert result.tiles.equals(tile_stats(d, e, PolicyConfig(), tags=result.tiles.tag))


def test_driver_spends_no_simulated_time_beyond_the_stream(accel):
    model = accel.driver.device.model
    x, w = _operands(np.random.default_rng(19), 64, 100, 64)
    plan = plan_for(x, w, 8)
    start = model.cycles
    accel.gemm(x, w)
    host_cycles = model.cycles - start
    stream = np.zeros(plan.count * plan.in_tile_bytes, dtype=np.uint8)
    pack_tiles(stream, tile_operands(x, w, plan), plan, 0, plan.count)
    start = model.cycles
    model.raw(stream, np.zeros(plan.count * plan.out_tile_bytes, dtype=np.uint8))
    raw_cycles = model.cycles - start
    accel.driver.recover()  # the raw path bypassed the DMA registers
    assert host_cycles < raw_cycles + 2000
