import sys

import numpy as np
import pytest
from click.testing import CliRunner
from oracles import int32_matmul

import realm_hil
from realm_hil import tiling
from realm_hil.cli.main import cli

# tiling.int32_gemm runs torch._int_mm below K = 2^31 / 2^14 (no int32 partial sum can wrap)
# and an int64 matmul from there on; the shapes below cover both sides of that switch.
INT64_PATH_K = 1 << 17


def operand_pairs(rng):
    """(x, w) pairs: random shapes on the torch._int_mm path, long-K shapes on the int64 path.

    Besides uniform operands, same-signed large ones make sums beyond float32's 2^24 on the fast
    path and beyond 2^31 (so the result wraps) on the int64 path; the extremes hit the last K
    without a wrap (2^31 - 2^14) and the first wrap (2^31 -> -2^31) exactly.
    """

    def uniform(m, k, n):
        return rng.integers(-128, 128, (m, k), dtype=np.int8), rng.integers(-128, 128, (k, n), dtype=np.int8)

    def same_signed(m, k, n):
        sign = rng.choice([-1, 1])
        x = sign * rng.integers(120, 128, (m, k))
        w = sign * rng.integers(120, 128, (k, n))
        return x.astype(np.int8), w.astype(np.int8)

    for _ in range(40):
        yield uniform(*rng.integers(1, 400, size=3))
    for _ in range(10):
        m, n = rng.integers(1, 40, size=2)
        yield same_signed(m, int(rng.integers(1100, 20000)), n)
    for _ in range(4):
        m, n = rng.integers(1, 9, size=2)
        k = int(rng.integers(INT64_PATH_K, INT64_PATH_K + 20000))
        yield uniform(m, k, n)
        yield same_signed(m, k, n)
    for k in (INT64_PATH_K - 1, INT64_PATH_K):
        yield np.full((3, k), -128, np.int8), np.full((k, 2), -128, np.int8)
    yield np.full((2, INT64_PATH_K + 9000), -128, np.int8), np.full((INT64_PATH_K + 9000, 3), 127, np.int8)


def test_reference_exact_on_random_shapes():
    """The reference backend equals exact int64 arithmetic wrapped to 32 bits, on both int32_gemm paths."""
    rng = np.random.default_rng(0)
    paths, wrapped = set(), 0
    with realm_hil.open_accelerator("reference") as acc:
        for x, w in operand_pairs(rng):
            m, k = x.shape
            n = w.shape[1]
            y = acc.gemm(x, w)
            assert y.dtype == np.int32 and y.shape == (m, n)
            expected = int32_matmul(x, w)
            assert np.array_equal(y, expected), (m, k, n)
            full = x.astype(np.int64) @ w.astype(np.int64)
            wrapped += int((full != expected).sum())
            paths.add(k >= INT64_PATH_K)
            stats = acc.last_stats
            assert stats.n_tiles == -(-m // 8) * -(-n // 8)
            assert stats.tiles_err == 0 and stats.msd == 0
    assert paths == {False, True} and wrapped > 0


def test_extremes_wrap_as_the_accumulator_does():
    """K = 2^17 products of (-128)(-128) sum to 2^31, one more than int32 holds: the register wraps to -2^31."""
    with realm_hil.open_accelerator("reference") as acc:
        k = INT64_PATH_K
        assert acc.gemm(np.full((1, k - 1), -128, np.int8), np.full((k - 1, 1), -128, np.int8))[0, 0] == 2**31 - 2**14
        assert acc.gemm(np.full((1, k), -128, np.int8), np.full((k, 1), -128, np.int8))[0, 0] == -(2**31)


def test_gemm_command_checks_against_numpy():
    result = CliRunner().invoke(cli, ["gemm", "--backend", "reference", "--m", "19", "--k", "300", "--n", "21"])
    assert result.exit_code == 0, result.output
    assert "bit-exact vs numpy" in result.output and "9 tiles, 0 with errors" in result.output


def test_gemm_command_fails_when_the_backend_is_wrong(monkeypatch):
    """A wrong int32_gemm, wherever the library binds it, must make `realm-hil gemm` fail, not pass."""
    exact = tiling.int32_gemm

    def off_by_one(x, w):
        y = exact(x, w)
        y[-1, -1] += 1
        return y

    for name, module in list(sys.modules.items()):
        if name.startswith("realm_hil") and getattr(module, "int32_gemm", None) is exact:
            monkeypatch.setattr(module, "int32_gemm", off_by_one)
    result = CliRunner().invoke(cli, ["gemm", "--backend", "reference", "--m", "19", "--k", "300", "--n", "21"])
    assert result.exit_code == 1, result.output
    assert "MISMATCH in 1 elements" in result.output


def test_reference_rejects_bad_input():
    with realm_hil.open_accelerator("reference") as acc, pytest.raises(ValueError, match="int8"):
        acc.gemm(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.int8))


def test_unknown_backend():
    with pytest.raises(realm_hil.errors.RealmError, match="unknown backend"):
        realm_hil.open_accelerator("quantum")
