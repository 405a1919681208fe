"""Bit-exact model of the accelerator's error-statistics unit, vectorized over tiles.

Definitions are those of rtl/README.md ("Statistics words"). Every backend that does not read
the statistics from hardware (reference, twin) computes them here, so all backends report
statistics through one code path and can be compared field by field.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import lru_cache

import numpy as np

from . import regmap
from .errors import InputError

HIST_BINS = 32
HW_MODES = {"off": 0, "classic": 1, "approx": 2, "statistical": 3}
_U32 = 0xFFFFFFFF


@dataclass(frozen=True)
class PolicyConfig:
    """What the statistics unit's registers hold: recover policy and thresholds."""

    mode: str = "off"
    alpha_q8: int = 0  # signed Q8.8 slope of log2(theta) against log2(msd)
    beta_q8: int = 0  # signed Q8.8 offset
    freq_min: int = 1  # statistical: recover when freq_eff >= freq_min
    msd_thresh: int = 0  # approx: recover when msd > msd_thresh

    def __post_init__(self) -> None:
        if self.mode not in HW_MODES:
            raise InputError(f"policy mode must be one of {', '.join(HW_MODES)}, got {self.mode!r}")
        for name in ("alpha_q8", "beta_q8"):
            if not -(1 << 15) <= getattr(self, name) < (1 << 15):
                raise InputError(f"{name} must fit signed 16-bit Q8.8, got {getattr(self, name)}")
        if not 0 <= self.freq_min < (1 << 16):
            raise InputError(f"freq_min must be in [0, 65535], got {self.freq_min}")
        if not 0 <= self.msd_thresh < (1 << 64):
            raise InputError(f"msd_thresh must be an unsigned 64-bit value, got {self.msd_thresh}")

    @classmethod
    def from_floats(cls, mode: str, alpha: float = 0.0, beta: float = 0.0, **kwargs) -> PolicyConfig:
        return cls(mode, round(alpha * 256), round(beta * 256), **kwargs)


@dataclass
class TileStats:
    """Per-tile statistics, one entry per tile (arrays of equal length)."""

    tag: np.ndarray
    recover: np.ndarray
    any_err: np.ndarray
    msd: np.ndarray  # uint64
    max_abs: np.ndarray  # uint32 (as int64)
    theta: np.ndarray
    freq: np.ndarray
    freq_eff: np.ndarray
    row_freq: np.ndarray
    hist: np.ndarray  # (tiles, 32)

    def __len__(self) -> int:
        return len(self.tag)

    def equals(self, other: TileStats) -> bool:
        return all(np.array_equal(getattr(self, f.name), getattr(other, f.name)) for f in fields(TileStats))

    def total(self, name: str) -> int:
        """The exact sum of one per-tile field over every tile."""
        return _exact_sum(getattr(self, name))

    def maximum(self, name: str) -> int:
        return int(getattr(self, name).max(initial=0))

    def hist_total(self) -> np.ndarray:
        return self.hist.sum(axis=0)

    @classmethod
    def concat(cls, parts: list[TileStats]) -> TileStats:
        if not parts:
            return empty_tile_stats()
        return TileStats(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(TileStats)})


TILE_FIELDS = tuple(f.name for f in fields(TileStats))


class SparseTileStats(TileStats):
    """TileStats of `count` tiles of which only those at the ascending indices `bad` deviate.

    Every other tile has the statistics of an error-free tile (`clean`, one row per field). A GEMM
    has up to ~10^4 tiles and almost all are clean, so the per-tile arrays (a 32-bin histogram per
    tile among them) are built only when a field is read, and totals come from the deviating tiles.
    """

    def __init__(self, count: int, bad: np.ndarray, dirty: TileStats | None, clean: dict[str, np.ndarray]) -> None:
        # the dataclass fields stay unset: __getattr__ builds each on first read
        self._count, self._bad, self._dirty, self._clean = count, bad, dirty, clean

    def __getattr__(self, name: str) -> np.ndarray:
        if name not in TILE_FIELDS:
            raise AttributeError(name)
        value = self._column(name)
        setattr(self, name, value)
        return value

    def _column(self, name: str) -> np.ndarray:
        if name == "tag":
            return _tags(self._count)
        clean = self._clean[name]
        shape = (self._count, *clean.shape[1:])
        if self._dirty is None:
            return np.broadcast_to(clean, shape)  # read-only, no memory per tile
        # np.zeros leaves the pages of the error-free tiles unwritten
        column = np.zeros(shape, clean.dtype) if not clean.any() else np.repeat(clean, self._count, axis=0)
        column[self._bad] = getattr(self._dirty, name)
        return column

    def __len__(self) -> int:
        return self._count

    def total(self, name: str) -> int:
        dirty = 0 if self._dirty is None else self._dirty.total(name)
        return _exact_sum(self._clean[name]) * (self._count - len(self._bad)) + dirty

    def maximum(self, name: str) -> int:
        dirty = 0 if self._dirty is None else self._dirty.maximum(name)
        clean = int(self._clean[name].max()) if len(self._bad) < self._count else 0
        return max(clean, dirty)

    def hist_total(self) -> np.ndarray:
        dirty = 0 if self._dirty is None else self._dirty.hist_total()
        return self._clean["hist"][0] * (self._count - len(self._bad)) + dirty


def _exact_sum(values: np.ndarray) -> int:
    """Sum of integer (or bool) values as a Python int; uint64 (msd) is summed in 32-bit halves, exactly."""
    if values.dtype == np.uint64:
        return (int((values >> np.uint64(32)).sum()) << 32) + int((values & np.uint64(_U32)).sum())
    return int(values.sum())


@dataclass
class GemmStats:
    """Statistics of one GEMM: its tiles and the totals the hardware accumulates in registers."""

    tiles: TileStats
    tile_grid: tuple[int, int] = (0, 0)  # tiles along M and along N, row-major order
    # per-tile column and row deviations d_c, e_r (tiles, n) int32: what locates an isolated error
    col_dev: np.ndarray | None = None
    row_dev: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def n_tiles(self) -> int:
        return len(self.tiles)

    @property
    def tiles_err(self) -> int:
        return self.tiles.total("any_err")

    @property
    def tiles_recover(self) -> int:
        return self.tiles.total("recover")

    @property
    def msd(self) -> int:
        return self.tiles.total("msd")

    @property
    def freq(self) -> int:
        return self.tiles.total("freq")

    @property
    def freq_eff(self) -> int:
        return self.tiles.total("freq_eff")

    @property
    def row_freq(self) -> int:
        return self.tiles.total("row_freq")

    @property
    def max_abs(self) -> int:
        return self.tiles.maximum("max_abs")

    @property
    def hist(self) -> np.ndarray:
        return self.tiles.hist_total()

    @property
    def recover(self) -> bool:
        return self.tiles_recover > 0

    def totals(self) -> dict:
        """The GEMM totals, keyed like the hardware's total registers."""
        return {
            "tiles": self.n_tiles,
            "tiles_err": self.tiles_err,
            "tiles_recover": self.tiles_recover,
            "msd": self.msd,
            "freq": self.freq,
            "freq_eff": self.freq_eff,
            "row_freq": self.row_freq,
            "max_abs": self.max_abs,
            "hist": [int(v) for v in self.hist],
        }


def empty_tile_stats() -> TileStats:
    z = np.zeros(0, dtype=np.int64)
    return TileStats(z, z.astype(bool), z.astype(bool), z.astype(np.uint64), z, z, z, z, z,
                     np.zeros((0, HIST_BINS), dtype=np.int64))


def _floor_log2(values: np.ndarray) -> np.ndarray:
    """floor(log2 v) for positive integers up to 2^64 - 1, exact (no float rounding)."""
    v = values.astype(np.uint64)
    if v.size and v.max() < np.uint64(1 << 53):
        # every such integer is a float64 exactly, and frexp's exponent is exact
        return np.frexp(v.astype(np.float64))[1].astype(np.int64) - 1
    out = np.zeros(v.shape, dtype=np.int64)
    for shift in (32, 16, 8, 4, 2, 1):
        big = v >= (np.uint64(1) << np.uint64(shift))
        out += np.where(big, shift, 0)
        v = np.where(big, v >> np.uint64(shift), v)
    return out


def mitchell_log2_q8(msd: np.ndarray) -> np.ndarray:
    """Unsigned Q6.8 Mitchell log2: integer part from the leading one, 8 mantissa bits below it."""
    msd = np.asarray(msd, dtype=np.uint64)
    nonzero = msd != 0
    e = _floor_log2(np.where(nonzero, msd, 1))
    # ((msd << 8) >> e) keeps 8 bits below the leading one; split shifts to stay inside 64 bits
    mant = np.where(e >= 8, msd >> (e - 8).astype(np.uint64), msd << (8 - e).clip(0).astype(np.uint64))
    frac = (mant & np.uint64(0xFF)).astype(np.int64)
    return np.where(nonzero, (e << 8) | frac, 0)


def theta_from_msd(msd: np.ndarray, alpha_q8: int, beta_q8: int) -> np.ndarray:
    """theta = 2^(alpha * log2(msd) + beta) in the unit's fixed point (uint32 as int64)."""
    lg = mitchell_log2_q8(msd)
    t = ((alpha_q8 * lg) >> 8) + beta_q8
    ti = t >> 8
    safe = np.clip(ti, 0, 31)
    theta = ((256 + (t & 0xFF)) << safe) >> 8
    theta = np.where(ti >= 32, _U32, theta)
    return np.where(t < 0, 0, theta)


def tile_stats(d: np.ndarray, e: np.ndarray, policy: PolicyConfig, tags: np.ndarray | None = None) -> TileStats:
    """Statistics of tiles from their column deviations d (T, n) and row deviations e (T, n)."""
    d = np.asarray(d, dtype=np.int32).reshape(len(d), -1)
    e = np.asarray(e, dtype=np.int32).reshape(len(e), -1)
    absd = np.abs(d.astype(np.int64))
    nz = d != 0
    msd = absd.sum(axis=1).astype(np.uint64)
    freq = nz.sum(axis=1)
    row_freq = (e != 0).sum(axis=1)
    max_abs = absd.max(axis=1, initial=0)
    bins = _floor_log2(np.where(nz, absd, 1))
    hist = np.zeros((len(d), HIST_BINS), dtype=np.int64)
    rows = np.broadcast_to(np.arange(len(d))[:, None], d.shape)
    np.add.at(hist, (rows[nz], bins[nz]), 1)
    theta = theta_from_msd(msd, policy.alpha_q8, policy.beta_q8)
    freq_eff = (absd > theta[:, None]).sum(axis=1)
    any_err = (freq != 0) | (row_freq != 0)
    mode = HW_MODES[policy.mode]
    if mode == 0:
        recover = np.zeros(len(d), dtype=bool)
    elif mode == 1:
        recover = any_err.copy()
    elif mode == 2:
        recover = msd > np.uint64(policy.msd_thresh)
    else:
        recover = freq_eff >= policy.freq_min
    tags = np.arange(len(d)) & 0xFFFF if tags is None else np.asarray(tags, dtype=np.int64) & 0xFFFF
    return TileStats(tags.astype(np.int64), recover, any_err, msd, max_abs.astype(np.int64),
                     theta.astype(np.int64), freq.astype(np.int64), freq_eff.astype(np.int64),
                     row_freq.astype(np.int64), hist)


def tile_stats_sparse(d: np.ndarray, e: np.ndarray, policy: PolicyConfig) -> TileStats:
    """tile_stats for many tiles of which few deviate: only the deviating tiles are computed."""
    d = np.asarray(d, dtype=np.int32).reshape(len(d), -1)
    e = np.asarray(e, dtype=np.int32).reshape(len(e), -1)
    bad = np.flatnonzero((d != 0).any(axis=1) | (e != 0).any(axis=1))
    return tile_stats_at(len(d), bad, d[bad], e[bad], policy)


def tile_stats_at(count: int, bad: np.ndarray, d: np.ndarray, e: np.ndarray, policy: PolicyConfig) -> TileStats:
    """Statistics of `count` tiles of which only those at the ascending indices `bad` deviate, by d and e.

    Every other tile has the statistics of an error-free tile, one row per policy (cached); the
    per-tile arrays are built only when read (SparseTileStats).
    """
    clean = _clean_row(policy, d.shape[1])
    dirty = tile_stats(d, e, policy, tags=bad) if len(bad) else None
    return SparseTileStats(count, bad, dirty, clean)


@lru_cache(maxsize=1024)
def _clean_row(policy: PolicyConfig, n: int) -> dict[str, np.ndarray]:
    """The statistics of one error-free tile of an n x n array under `policy`, every field but the tag."""
    row = tile_stats(np.zeros((1, n), np.int32), np.zeros((1, n), np.int32), policy)
    out = {f.name: getattr(row, f.name) for f in fields(TileStats) if f.name != "tag"}
    for value in out.values():
        value.flags.writeable = False
    return out


@lru_cache(maxsize=64)
def _tags(count: int) -> np.ndarray:
    """Tile tags 0, 1, ... (mod 2^16) of a GEMM of `count` tiles, shared read-only by every GEMM of that size."""
    tags = np.arange(count, dtype=np.int64) & 0xFFFF
    tags.flags.writeable = False
    return tags


def zero_tile_stats(count: int, n: int, policy: PolicyConfig) -> TileStats:
    """Statistics of `count` error-free tiles of an n x n array (read-only views of one row)."""
    return tile_stats_at(count, np.zeros(0, np.int64), np.zeros((0, n), np.int32), np.zeros((0, n), np.int32), policy)


def encode_stats_words(s: TileStats) -> np.ndarray:
    """The 16 statistics words per tile as the hardware sends them, (T, 16) uint32."""
    words = np.zeros((len(s), regmap.STATS_WORDS), dtype=np.uint64)
    words[:, 0] = (s.tag & 0xFFFF) | (s.recover.astype(np.int64) << 16) | (s.any_err.astype(np.int64) << 17)
    words[:, 1] = s.msd & np.uint64(_U32)
    words[:, 2] = s.msd >> np.uint64(32)
    words[:, 3] = s.max_abs
    words[:, 4] = s.theta
    words[:, 5] = (s.freq & 0xFFFF) | ((s.freq_eff & 0xFFFF) << 16)
    words[:, 6] = s.row_freq & 0xFFFF
    packed = s.hist.astype(np.uint8).reshape(len(s), 8, 4).view("<u4").reshape(len(s), 8)
    words[:, 8:16] = packed
    return words.astype(np.uint32)


def decode_stats_words(words: np.ndarray) -> TileStats:
    """Inverse of encode_stats_words: parse (T, 16) uint32 statistics words."""
    w = np.asarray(words, dtype=np.uint32).reshape(-1, regmap.STATS_WORDS)
    w64 = w.astype(np.int64)
    hist = np.ascontiguousarray(w[:, 8:16]).view(np.uint8).reshape(len(w), HIST_BINS).astype(np.int64)
    msd = w[:, 1].astype(np.uint64) | (w[:, 2].astype(np.uint64) << np.uint64(32))
    return TileStats(
        tag=w64[:, 0] & 0xFFFF,
        recover=((w64[:, 0] >> 16) & 1).astype(bool),
        any_err=((w64[:, 0] >> 17) & 1).astype(bool),
        msd=msd,
        max_abs=w64[:, 3],
        theta=w64[:, 4],
        freq=w64[:, 5] & 0xFFFF,
        freq_eff=(w64[:, 5] >> 16) & 0xFFFF,
        row_freq=w64[:, 6] & 0xFFFF,
        hist=hist,
    )
