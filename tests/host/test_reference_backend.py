import sys

import numpy as np
import pytest
from click.testing import CliRunner
from oracles import int32_matmul

import realm_hil
from realm_hil import tiling
from realm_hil.cli.main import cli
from realm_hil.errors import InputError

# The longest K a GEMM may have: K products of (-128)(-128) = 2^14 stay below 2^31 (tiling.MAX_K).
MAX_K = (2**31 - 1) // 2**14


def operand_pairs(rng):
    """(x, w) pairs: random shapes, and long-K ones up to the longest K a GEMM may have.

    Besides uniform operands, same-signed large ones make sums beyond float32's 2^24, and near
    MAX_K up to 2^31 - 2^14, the top of the int32 range; the extreme hits it exactly.
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
        k = int(rng.integers(MAX_K - 20000, MAX_K + 1))
        yield uniform(m, k, n)
        yield same_signed(m, k, n)
    yield np.full((3, MAX_K), -128, np.int8), np.full((MAX_K, 2), -128, np.int8)


@pytest.mark.parametrize("torch_present", [True, False])
def test_reference_exact_on_random_shapes(monkeypatch, torch_present):
    """The reference backend equals exact int64 arithmetic, with torch._int_mm and without torch."""
    if not torch_present:  # a board image has no torch: tiling.int32_gemm then multiplies in numpy int64
        monkeypatch.setitem(sys.modules, "torch", None)
    rng = np.random.default_rng(0)
    top = 0
    with realm_hil.open_accelerator("reference") as acc:
        for x, w in operand_pairs(rng):
            m, k = x.shape
            n = w.shape[1]
            result = acc.gemm(x, w)
            y = result.y
            assert y.dtype == np.int32 and y.shape == (m, n)
            assert np.array_equal(y, int32_matmul(x, w)), (m, k, n)
            top = max(top, int(np.abs(y.astype(np.int64)).max()))
            stats = result.stats
            assert stats.n_tiles == -(-m // 8) * -(-n // 8)
            assert stats.tiles_err == 0 and stats.msd == 0
    assert top == 2**31 - 2**14  # the extreme was reached


def test_longest_k_is_exact_and_one_more_is_refused():
    """MAX_K products of (-128)(-128) sum to 2^31 - 2^14; one more could wrap to -2^31 unflagged."""
    with realm_hil.open_accelerator("reference") as acc:
        k = MAX_K
        assert acc.gemm(np.full((1, k), -128, np.int8), np.full((k, 1), -128, np.int8)).y[0, 0] == 2**31 - 2**14
        with pytest.raises(InputError, match="overflow"):
            acc.gemm(np.full((1, k + 1), -128, np.int8), np.full((k + 1, 1), -128, np.int8))


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
