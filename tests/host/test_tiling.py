import numpy as np
import pytest

from realm_hil import regmap
from realm_hil.errors import InputError
from realm_hil.tiling import (
    MAX_K,
    TilePlan,
    assemble,
    exact_tiles,
    int32_gemm,
    pack_tiles,
    plan_for,
    reference_deviations,
    tile_operands,
    unpack_output,
    validate_operands,
)


def _int8(rng, shape):
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 3, 9), (17, 40, 8), (64, 576, 33)])
@pytest.mark.parametrize("array_n", [4, 8, 16])
def test_pack_layout(shape, array_n):
    rng = np.random.default_rng(sum(shape) + array_n)
    m, k, n = shape
    x, w = _int8(rng, (m, k)), _int8(rng, (k, n))
    plan = plan_for(x, w, array_n)
    buf = np.zeros(plan.count * plan.in_tile_bytes, dtype=np.uint8)
    assert pack_tiles(buf, tile_operands(x, w, plan), plan, 0, plan.count, tag_base=7) == buf.size
    beats = buf.reshape(plan.count, 1 + k, 2 * array_n)
    for t in range(plan.count):
        i, j = divmod(t, plan.tiles_n)
        header = beats[t, 0]
        assert int.from_bytes(header[0:2], "little") == regmap.STREAM_MAGIC
        assert int.from_bytes(header[2:4], "little") == 7 + t
        assert int.from_bytes(header[4:8], "little") == k
        xs = np.zeros((array_n, k), dtype=np.int8)
        rows = x[i * array_n:(i + 1) * array_n]
        xs[: len(rows)] = rows
        ws = np.zeros((k, array_n), dtype=np.int8)
        cols = w[:, j * array_n:(j + 1) * array_n]
        ws[:, : cols.shape[1]] = cols
        assert np.array_equal(beats[t, 1:, :array_n].view(np.int8), xs.T)
        assert np.array_equal(beats[t, 1:, array_n:].view(np.int8), ws)


def test_unpack_and_assemble_round_trip():
    rng = np.random.default_rng(0)
    x, w = _int8(rng, (21, 50)), _int8(rng, (50, 13))
    plan = plan_for(x, w, 8)
    tiles = exact_tiles(x, w, plan)
    assert np.array_equal(assemble(tiles, plan), int32_gemm(x, w))
    raw = np.zeros((plan.count, plan.out_tile_beats, 8), dtype=np.int32)
    raw[:, :8] = tiles
    raw[:, 8] = 5
    raw[:, 9] = -5
    raw[:, 10:].reshape(plan.count, -1)[:, :16] = np.arange(16)
    out = unpack_output(raw.view(np.uint8).ravel(), plan, plan.count)
    assert np.array_equal(out.y, tiles)
    assert (out.col_dev == 5).all() and (out.row_dev == -5).all()
    assert np.array_equal(out.stats_words[0], np.arange(16))


def test_deviations_locate_an_isolated_error():
    rng = np.random.default_rng(1)
    exact = rng.integers(-1000, 1000, size=(3, 8, 8)).astype(np.int32)
    y = exact.copy()
    y[1, 2, 5] ^= 1 << 30
    d, e = reference_deviations(y, exact)
    assert np.count_nonzero(d) == 1 and np.count_nonzero(e) == 1
    assert d[1, 5] == e[1, 2] == int(y[1, 2, 5]) - int(exact[1, 2, 5])


def test_int32_gemm_wraps_like_hardware():
    k = 140_000
    x = np.full((1, k), -128, dtype=np.int8)
    w = np.full((k, 1), -128, dtype=np.int8)
    assert int32_gemm(x, w)[0, 0] == np.int64(k * 16384 - 2**32 * ((k * 16384 + 2**31) // 2**32))


@pytest.mark.parametrize(
    "x, w, message",
    [
        (np.zeros((2, 3), np.int16), np.zeros((3, 2), np.int8), "dtype int8"),
        (np.zeros((2, 3), np.int8), np.zeros((4, 2), np.int8), "inner dimensions"),
        (np.zeros((0, 3), np.int8), np.zeros((3, 2), np.int8), "non-empty"),
        (np.zeros(3, np.int8), np.zeros((3, 2), np.int8), "2-D"),
        ([[1]], np.zeros((1, 1), np.int8), "numpy array"),
    ],
)
def test_validation_messages(x, w, message):
    with pytest.raises(ValueError, match=message):
        validate_operands(x, w)


def test_plan_counts():
    plan = TilePlan(65, 10, 17, 8)
    assert (plan.tiles_m, plan.tiles_n, plan.count) == (9, 3, 27)
    assert plan.out_tile_beats == 8 + 2 + 2


def test_k_above_the_no_wrap_bound_is_refused():
    k = MAX_K + 1  # 131072 products of -128 x -128 sum to 2^31: INT32 wraps to -2^31
    x, w = np.full((1, k), -128, np.int8), np.full((k, 1), -128, np.int8)
    assert MAX_K == 131071 and int(int32_gemm(x, w)[0, 0]) == -(1 << 31)
    with pytest.raises(InputError, match="K = 131072"):
        validate_operands(x, w)
    validate_operands(x[:, :MAX_K], w[:MAX_K])


@pytest.mark.parametrize("backend", ["reference", "twin", pytest.param("sim", marks=pytest.mark.sim)])
def test_largest_k_is_exact_and_one_more_is_refused(backend):
    import realm_hil

    rng = np.random.default_rng(7)
    # worst case in the first row and column, random operands elsewhere
    x = _int8(rng, (3, MAX_K + 1))
    w = _int8(rng, (MAX_K + 1, 2))
    x[0], w[:, 0] = -128, -128
    expected = x[:, :MAX_K].astype(np.int64) @ w[:MAX_K].astype(np.int64)
    assert expected[0, 0] == MAX_K << 14 == (1 << 31) - (1 << 14)
    with realm_hil.open_accelerator(backend) as acc:
        y = acc.gemm(x[:, :MAX_K], w[:MAX_K]).y
        assert y.dtype == np.int32 and np.array_equal(y.astype(np.int64), expected)
        with pytest.raises(InputError, match="K = 131072"):
            acc.gemm(x, w)
