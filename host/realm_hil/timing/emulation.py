"""Numpy reference of the data-dependent timing-error model (docs/timing-error-model.md).

This is the oracle the RTL emulation and the compiled twin are both tested against: slow and
obvious on purpose, vectorized over elements, one accumulation step per call.
"""

from __future__ import annotations

import numpy as np

WORD_MASK = np.uint64(0xFFFFFFFF)
# L at or above this value can never produce a late bit in a 32-bit adder.
L_EXACT = 31


def late_mask(a: np.ndarray, b: np.ndarray, slack: np.ndarray) -> np.ndarray:
    """Bits of a + b whose carry chain is longer than the per-element slack L (0 <= L < 31)."""
    a64 = a.astype(np.int64) & 0xFFFFFFFF
    b64 = b.astype(np.int64) & 0xFFFFFFFF
    propagate = a64 ^ b64
    carry = ((a64 + b64) & 0xFFFFFFFF) ^ propagate
    late = carry.copy()
    slack = np.broadcast_to(np.asarray(slack, dtype=np.int64), late.shape)
    for shift in range(1, L_EXACT):
        active = slack >= shift
        late = np.where(active, late & ((propagate << shift) & 0xFFFFFFFF), late)
    return late


def timed_add(a: np.ndarray, b: np.ndarray, slack: np.ndarray) -> np.ndarray:
    """One accumulator update a <- a + b under slack L; int32 in, int32 out.

    L >= 31: exact sum. L < 0: nothing arrives in time, the register keeps a.
    Otherwise late bits keep their old value from a.
    """
    a = np.asarray(a, dtype=np.int32)
    b = np.asarray(b, dtype=np.int32)
    slack = np.broadcast_to(np.asarray(slack, dtype=np.int64), np.broadcast(a, b).shape)
    a64 = a.astype(np.int64) & 0xFFFFFFFF
    total = (a64 + (b.astype(np.int64) & 0xFFFFFFFF)) & 0xFFFFFFFF
    late = np.where((slack >= 0) & (slack < L_EXACT), late_mask(a, b, np.clip(slack, 0, L_EXACT - 1)), 0)
    result = (total & ~late) | (a64 & late)
    result = np.where(slack < 0, a64, result)
    return result.astype(np.uint32).view(np.int32)


def timed_dot(x: np.ndarray, w: np.ndarray, slack: np.ndarray) -> np.ndarray:
    """Accumulate sum_k x[..., k] * w[..., k] with timing errors, in k order, from a reset register.

    x and w are int8 arrays broadcast against each other with K last; slack broadcasts against
    the leading dimensions.
    """
    x = np.asarray(x, dtype=np.int32)
    w = np.asarray(w, dtype=np.int32)
    shape = np.broadcast_shapes(x.shape[:-1], w.shape[:-1])
    acc = np.zeros(shape, dtype=np.int32)
    for k in range(x.shape[-1]):
        acc = timed_add(acc, x[..., k] * w[..., k], slack)
    return acc


def timed_checksums(
    x_tiles: np.ndarray, w_tiles: np.ndarray, y_tiles: np.ndarray, check_slack: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Deviations d, e of tiles when the checksum accumulators follow the model (EMU_CHECKS=1).

    x_tiles (T, n, K) and w_tiles (T, K, n) are the int8 operands of each tile, y_tiles (T, n, n)
    the int32 results the array produced; check_slack (3, n) holds L of the accumulators of
    -r_c, -q_r and d_c (CK_L_TABLE order). As in rtl/README.md ("Checksums"): the hardware keeps
    the reference checksums negated, -r_c += -(sum_r X[r,k]) W[k,c] and -q_r += -(sum_c W[k,c]) X[r,k]
    over the K beats from a reset register; d_c then accumulates the N result rows onto the
    loaded -r_c; e_r = sum_c Y[r,c] - q_r is a single adder tree per row and stays exact.
    Returns d and e as (T, n) int32.
    """
    x = np.asarray(x_tiles, dtype=np.int32)
    w = np.asarray(w_tiles, dtype=np.int32)
    y = np.asarray(y_tiles, dtype=np.int32)
    slack = np.asarray(check_slack)
    x_neg = -x.sum(axis=1)
    w_neg = -w.sum(axis=2)
    col = np.zeros((len(x), x.shape[1]), dtype=np.int32)
    row = np.zeros_like(col)
    for k in range(x.shape[2]):
        col = timed_add(col, x_neg[:, k, None] * w[:, k, :], slack[0])
        row = timed_add(row, w_neg[:, k, None] * x[:, :, k], slack[1])
    d = col
    for r in range(y.shape[1]):
        d = timed_add(d, y[:, r, :], slack[2])
    e = (y.astype(np.int64).sum(axis=2) + row) & 0xFFFFFFFF
    return d, e.astype(np.uint32).view(np.int32)
