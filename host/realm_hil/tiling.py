"""GEMM tiling and the accelerator's stream format (rtl/README.md, "Stream framing").

A GEMM Y = X W (X: M x K, W: K x N) becomes ceil(M/n) x ceil(N/n) output tiles of the n x n
array, row-major, each carrying the full K. Packing and unpacking are vectorized numpy copies
straight into (and out of) DMA buffers, so the host path adds little next to the array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import regmap
from .errors import InputError

HEADER_TAG_MASK = 0xFFFF
# Largest K whose INT32 accumulation cannot wrap: |x * w| <= 2^14 (-128 x -128), so K products sum to
# at most K * 2^14 <= 2^31 - 1. One more (131072 x -128 x -128 = 2^31) wraps to -2^31 with nothing
# flagged, since the checksums wrap alike; such a GEMM is refused rather than silently wrong.
MAX_K = ((1 << 31) - 1) // (1 << 14)


@dataclass(frozen=True)
class TilePlan:
    m: int
    k: int
    n: int
    array_n: int

    @property
    def tiles_m(self) -> int:
        return -(-self.m // self.array_n)

    @property
    def tiles_n(self) -> int:
        return -(-self.n // self.array_n)

    @property
    def count(self) -> int:
        return self.tiles_m * self.tiles_n

    @property
    def in_beat_bytes(self) -> int:
        return 2 * self.array_n

    @property
    def in_tile_bytes(self) -> int:
        return (1 + self.k) * self.in_beat_bytes

    @property
    def out_beat_bytes(self) -> int:
        return 4 * self.array_n

    @property
    def stats_beats(self) -> int:
        return -(-regmap.STATS_WORDS // self.array_n)

    @property
    def out_tile_beats(self) -> int:
        return self.array_n + 2 + self.stats_beats

    @property
    def out_tile_bytes(self) -> int:
        return self.out_tile_beats * self.out_beat_bytes

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n


def validate_operands(x: np.ndarray, w: np.ndarray) -> None:
    """Raise InputError naming what was expected when x, w are not a valid INT8 GEMM pair (K <= MAX_K)."""
    for name, arr, shape in (("x", x, "(M, K)"), ("w", w, "(K, N)")):
        if not isinstance(arr, np.ndarray):
            raise InputError(f"{name} must be a numpy array {shape} of int8, got {type(arr).__name__}")
        if arr.dtype != np.int8:
            raise InputError(f"{name} must have dtype int8, got {arr.dtype}")
        if arr.ndim != 2:
            raise InputError(f"{name} must be 2-D {shape}, got shape {arr.shape}")
        if arr.size == 0:
            raise InputError(f"{name} must be non-empty {shape} with every dimension >= 1, got {arr.shape}")
    if x.shape[1] != w.shape[0]:
        raise InputError(f"inner dimensions differ: x is {x.shape} and w is {w.shape}; expected (M, K) and (K, N)")
    check_k(x.shape[1])


def check_k(k: int) -> None:
    """Refuse an inner dimension whose INT32 sums could wrap (MAX_K)."""
    if k > MAX_K:
        raise InputError(f"K = {k} can overflow the INT32 accumulators: at most {MAX_K} INT8 products "
                         "(each up to 2^14) always fit; split K")


def plan_for(x: np.ndarray, w: np.ndarray, array_n: int) -> TilePlan:
    return TilePlan(x.shape[0], x.shape[1], w.shape[1], array_n)


def tile_operands(x: np.ndarray, w: np.ndarray, plan: TilePlan) -> tuple[np.ndarray, np.ndarray]:
    """Zero-padded operand panels: X as (tiles_m, K, n) columns, W as (tiles_n, K, n) rows."""
    n = plan.array_n
    xp = np.zeros((plan.tiles_m * n, plan.k), dtype=np.int8)
    xp[: plan.m] = x
    wp = np.zeros((plan.k, plan.tiles_n * n), dtype=np.int8)
    wp[:, : plan.n] = w
    x_panels = np.ascontiguousarray(xp.reshape(plan.tiles_m, n, plan.k).transpose(0, 2, 1))
    w_panels = np.ascontiguousarray(wp.reshape(plan.k, plan.tiles_n, n).transpose(1, 0, 2))
    return x_panels, w_panels


def pack_tiles(
    out: np.ndarray,
    panels: tuple[np.ndarray, np.ndarray],
    plan: TilePlan,
    first: int,
    stop: int,
    tag_base: int = 0,
) -> int:
    """Write tiles [first, stop) into the uint8 buffer `out`; returns the byte count written.

    Tile t has tag (tag_base + t) & 0xFFFF so the output can be checked for loss or reordering.
    """
    x_panels, w_panels = panels
    count = stop - first
    n = plan.array_n
    view = out[: count * plan.in_tile_bytes].reshape(count, 1 + plan.k, 2, n)
    tiles = np.arange(first, stop)
    header = view[:, 0].reshape(count, 2 * n)
    header[:] = 0
    header_words = header[:, :8].view("<u2").reshape(count, 4)
    header_words[:, 0] = regmap.STREAM_MAGIC
    header_words[:, 1] = (tag_base + tiles) & HEADER_TAG_MASK
    header[:, 4:8] = np.frombuffer(np.uint32(plan.k).tobytes(), dtype=np.uint8)
    view[:, 1:, 0, :] = x_panels[tiles // plan.tiles_n].view(np.uint8)
    view[:, 1:, 1, :] = w_panels[tiles % plan.tiles_n].view(np.uint8)
    return count * plan.in_tile_bytes


@dataclass
class TileOutputs:
    """What the accelerator sent back for a run of tiles."""

    y: np.ndarray  # (tiles, n, n) int32
    col_dev: np.ndarray  # (tiles, n) int32, d_c
    row_dev: np.ndarray  # (tiles, n) int32, e_r
    stats_words: np.ndarray  # (tiles, 16) uint32


def unpack_output(raw: np.ndarray, plan: TilePlan, count: int) -> TileOutputs:
    """Split the output stream of `count` tiles into results, deviations and statistics words."""
    n = plan.array_n
    beats = np.asarray(raw[: count * plan.out_tile_bytes]).view("<i4").reshape(count, plan.out_tile_beats, n)
    stats = beats[:, n + 2 :].reshape(count, -1)[:, : regmap.STATS_WORDS].view(np.uint32)
    return TileOutputs(beats[:, :n].copy(), beats[:, n].copy(), beats[:, n + 1].copy(), stats.copy())


def assemble(y_tiles: np.ndarray, plan: TilePlan) -> np.ndarray:
    """(tiles, n, n) results in row-major tile order -> the (M, N) int32 GEMM result."""
    n = plan.array_n
    full = y_tiles.reshape(plan.tiles_m, plan.tiles_n, n, n).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(full.reshape(plan.tiles_m * n, plan.tiles_n * n)[: plan.m, : plan.n])


def reference_deviations(y_tiles: np.ndarray, exact_tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column and row deviations d, e of tiles against their exact values, wrapped to int32.

    The checksum identity makes these equal to what the hardware computes from its reference
    checksums: sum over the error matrix, column-wise and row-wise, modulo 2^32.
    """
    err = y_tiles.astype(np.int64) - exact_tiles.astype(np.int64)
    d = err.sum(axis=1).astype(np.uint32).view(np.int32)
    e = err.sum(axis=2).astype(np.uint32).view(np.int32)
    return d, e


def exact_tiles(x: np.ndarray, w: np.ndarray, plan: TilePlan) -> np.ndarray:
    """Error-free int32 results of every tile, (tiles, n, n), row-major tile order."""
    return split_tiles(pad_to_tiles(int32_gemm(x, w), plan.array_n), plan)


def pad_to_tiles(a: np.ndarray, array_n: int) -> np.ndarray:
    """An (M, N) result-shaped array zero-padded to whole array_n x array_n tiles, as the host pads them."""
    m, n = a.shape
    out = np.zeros((-(-m // array_n) * array_n, -(-n // array_n) * array_n), dtype=a.dtype)
    out[:m, :n] = a
    return out


def split_tiles(y_padded: np.ndarray, plan: TilePlan) -> np.ndarray:
    n = plan.array_n
    return np.ascontiguousarray(
        y_padded.reshape(plan.tiles_m, n, plan.tiles_n, n).transpose(0, 2, 1, 3).reshape(-1, n, n)
    )




def int32_gemm(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Exact INT8 x INT8 -> INT32 GEMM with two's-complement wrap-around, as the array computes it."""
    # up to MAX_K no int32 partial sum can overflow, so a fast int32 GEMM is exact
    if x.shape[1] <= MAX_K:
        try:
            import torch
        except ImportError:
            pass
        else:
            return _torch_int_mm(torch, x, w)
    return (x.astype(np.int64) @ w.astype(np.int64)).astype(np.uint32).view(np.int32)


def _torch_int_mm(torch, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    # on the CPU torch._int_mm takes any shape (the M > 16 and multiple-of-8 rules are CUDA's)
    return torch._int_mm(torch.from_numpy(x), torch.from_numpy(w)).numpy()
