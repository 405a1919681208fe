"""Independent oracles for host tests, written without the library code they check.

`int32_matmul` is the exact INT8 GEMM of the array's 32-bit two's-complement accumulators:
exact int64 products and sums, reduced modulo 2^32 into int32's range by plain integer
arithmetic (not tiling.int32_gemm, which the backends themselves run).
"""

from __future__ import annotations

import numpy as np

WORD = 1 << 32


def wrap_int32(values: np.ndarray) -> np.ndarray:
    """Integers reduced modulo 2^32 into [-2^31, 2^31), as int32."""
    return ((np.asarray(values, dtype=np.int64) + WORD // 2) % WORD - WORD // 2).astype(np.int32)


def int32_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(M, K) int8 @ (K, N) int8 -> (M, N) int32, wrapping like the accumulators (exact below K ~ 2^49)."""
    return wrap_int32(x.astype(np.int64) @ w.astype(np.int64))


def tiles_of(a: np.ndarray, n: int) -> np.ndarray:
    """An (M, N) matrix zero-padded to whole n x n tiles, as (tiles, n, n) in row-major tile order."""
    m, cols = a.shape
    tm, tn = -(-m // n), -(-cols // n)
    padded = np.zeros((tm * n, tn * n), dtype=a.dtype)
    padded[:m, :cols] = a
    return padded.reshape(tm, n, tn, n).transpose(0, 2, 1, 3).reshape(-1, n, n)
