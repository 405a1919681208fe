import numpy as np
import pytest

import realm_hil
from realm_hil.tiling import int32_gemm


def test_reference_exact_on_random_shapes():
    rng = np.random.default_rng(0)
    with realm_hil.open_accelerator("reference") as acc:
        for _ in range(100):
            m, k, n = rng.integers(1, 700, size=3)
            x = rng.integers(-128, 128, size=(m, k), dtype=np.int8)
            w = rng.integers(-128, 128, size=(k, n), dtype=np.int8)
            assert np.array_equal(acc.gemm(x, w), int32_gemm(x, w))
            stats = acc.last_stats
            assert stats.n_tiles == -(-m // 8) * -(-n // 8)
            assert stats.tiles_err == 0 and stats.msd == 0


def test_reference_rejects_bad_input():
    with realm_hil.open_accelerator("reference") as acc, pytest.raises(ValueError, match="int8"):
        acc.gemm(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.int8))


def test_unknown_backend():
    with pytest.raises(realm_hil.errors.RealmError, match="unknown backend"):
        realm_hil.open_accelerator("quantum")
