"""Repair without recomputation: locate-and-correct from full checksums, and anomaly clearance.

Locate and correct. Per tile the hardware reports the column deviations d_c and the row
deviations e_r (rtl/README.md "Checksums"), each the sum of the tile's error matrix along one
axis modulo 2^32. If exactly one row r is bad, every error sits in row r and d_c is the error at
(r, c); if exactly one column c is bad, e_r is the error at (r, c). Both readings require
sum(d) = sum(e) (mod 2^32), the total error seen both ways (it fails when the checking path
itself erred), and a tile is corrected only when that holds; otherwise, or when several rows and
several columns are bad, it is left for recomputation. What the checksums cannot see is errors
in further rows that sum to 0 modulo 2^32 in each of those rows: two flips of one bit with
opposite signs, or four of bit 30 (4 * 2^30 = 2^32), are common under the i.i.d. bit-flip model
at high rates. So a corrected tile must also pass the range check of anomaly clearance on every
element; if any value is outside its provable range the correction is undone and the tile
recomputed.

Anomaly clearance (the cheap baseline): |y[m, j]| = |sum_k x[m, k] w[k, j]| can never exceed
||x[m, :]||_1 * max_k |w[k, j]|, so any accumulator beyond that bound is known wrong and is
zeroed. Timing errors strike high-order bits first, so most of them land far outside the bound.
"""

from __future__ import annotations

import numpy as np

from ..tiling import TilePlan

_MOD = 1 << 32


def locatable(col_dev: np.ndarray, row_dev: np.ndarray) -> np.ndarray:
    """Per tile: can the deviations place every error (one bad row or one bad column, consistent totals)?"""
    d = np.asarray(col_dev, dtype=np.int64)
    e = np.asarray(row_dev, dtype=np.int64)
    bad_cols = (d != 0).sum(axis=1)
    bad_rows = (e != 0).sum(axis=1)
    consistent = (d.sum(axis=1) - e.sum(axis=1)) % _MOD == 0
    one_line = ((bad_rows == 1) & (bad_cols >= 1)) | ((bad_cols == 1) & (bad_rows >= 1))
    return consistent & one_line


def correct_tiles(
    y: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    plan: TilePlan,
    col_dev: np.ndarray,
    row_dev: np.ndarray,
    candidates: np.ndarray,
) -> np.ndarray:
    """Fix the locatable tiles among `candidates` in y = x w, (M, N) int32, in place; returns those fixed.

    A tile whose located errors fall in the zero padding beyond M or N is not fixed (the padding
    cannot err, so the location is wrong), nor one left holding an out-of-range element.
    """
    n = plan.array_n
    fixable = np.asarray(candidates, dtype=bool) & locatable(col_dev, row_dev)
    tiles = np.flatnonzero(fixable)
    if tiles.size == 0:
        return fixable
    d = col_dev[tiles].astype(np.int64)
    e = row_dev[tiles].astype(np.int64)
    one_row = (e != 0).sum(axis=1) == 1
    # one bad row: the errors are d at (r, c) for the bad columns c; one bad column: e at (r, c)
    lanes = np.arange(n)
    r = np.where(one_row[:, None], np.argmax(e != 0, axis=1)[:, None], lanes[None, :])
    c = np.where(one_row[:, None], lanes[None, :], np.argmax(d != 0, axis=1)[:, None])
    err = np.where(one_row[:, None], d, e)
    hit = err != 0
    rows = (tiles // plan.tiles_n)[:, None] * n + r
    cols = (tiles % plan.tiles_n)[:, None] * n + c
    ok = (((rows < plan.m) & (cols < plan.n)) | ~hit).all(axis=1)
    fixable[tiles[~ok]] = False
    sel = hit & ok[:, None]
    flat = y.reshape(-1).view(np.uint32)
    idx = rows[sel] * plan.n + cols[sel]
    before = flat[idx].copy()
    flat[idx] = (before.astype(np.int64) - err[sel]) % _MOD
    implausible = _out_of_range_tiles(y, x, w, plan, tiles[ok])
    if implausible.size:
        undo = np.isin(np.broadcast_to(tiles[:, None], sel.shape)[sel], implausible)
        flat[idx[undo]] = before[undo]
        fixable[implausible] = False
    return fixable


def clear_out_of_range(y: np.ndarray, x: np.ndarray, w: np.ndarray) -> int:
    """Zero, in place, every accumulator of y = x w beyond its bound; returns how many were zeroed."""
    wrong = np.abs(y.astype(np.int64)) > _row_l1(x)[:, None] * _col_max(w)[None, :]
    y[wrong] = 0
    return int(wrong.sum())


def _out_of_range_tiles(y: np.ndarray, x: np.ndarray, w: np.ndarray, plan: TilePlan, tiles: np.ndarray) -> np.ndarray:
    """Those of `tiles` holding an element beyond the clearance bound."""
    n = plan.array_n
    lanes = np.arange(n)
    rows = (tiles // plan.tiles_n)[:, None] * n + lanes[None, :]
    cols = (tiles % plan.tiles_n)[:, None] * n + lanes[None, :]
    inside = (rows < plan.m)[:, :, None] & (cols < plan.n)[:, None, :]
    rows, cols = np.minimum(rows, plan.m - 1), np.minimum(cols, plan.n - 1)
    values = np.abs(y[rows[:, :, None], cols[:, None, :]].astype(np.int64))
    bound = _row_l1(x)[rows][:, :, None] * _col_max(w)[cols][:, None, :]
    return tiles[((values > bound) & inside).any(axis=(1, 2))]


def _row_l1(x: np.ndarray) -> np.ndarray:
    return np.abs(x.astype(np.int64)).sum(axis=1)


def _col_max(w: np.ndarray) -> np.ndarray:
    return np.abs(w.astype(np.int64)).max(axis=0)
