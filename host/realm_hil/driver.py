"""AccelDriver: the one host driver for realm_accel, on a PYNQ board and in simulation alike.

It talks only through the pynq API: pynq.MMIO for the register map, pynq.allocate buffers and
the stock pynq.lib.dma.DMA (simple mode) for the operand and result streams. In simulation
the same calls reach realm_hil.sim.device.SimDevice instead of /dev/mem.

A GEMM is tiled (realm_hil.tiling), packed straight into a reused DMA buffer a chunk of tiles
at a time, streamed through, and unpacked; all per-tile work is vectorized numpy, so a GEMM
costs a handful of register accesses per chunk plus one CLEAR_STATS write.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from pynq import MMIO, allocate
from pynq.lib.dma import DMA

from . import regmap
from .errors import InputError, RealmError
from .stats import HIST_BINS, HW_MODES, PolicyConfig, TileStats, decode_stats_words
from .tiling import TilePlan, assemble, pack_tiles, plan_for, tile_operands, unpack_output

DEFAULT_CHUNK_BYTES = 4 << 20
DEFAULT_TIMEOUT_S = 60.0
# Tags are 16 bits: keep every tag in a chunk distinct so loss and duplication stay visible.
MAX_TILES_PER_CHUNK = 1 << 15
DMACR = 0x00
DMACR_RESET = 1 << 2
DMA_RESET_POLLS = 1000
RESET_POLLS = 1000


class IncompatibleAccelerator(RealmError):
    """The device at the accelerator's address is not a realm_accel this host can drive."""


class AccelTimeoutError(TimeoutError):
    """A chunk of tiles did not complete in time; the accelerator and DMA were reset."""

    def __init__(self, message: str, first_tile: int, stop_tile: int) -> None:
        super().__init__(message)
        self.first_tile, self.stop_tile = first_tile, stop_tile


class StreamError(RuntimeError):
    """The result stream does not match what was sent: tiles lost, duplicated or reordered."""


@dataclass
class StreamedGemm:
    """One GEMM as the accelerator streamed it back: results and the statistics words, decoded."""

    y: np.ndarray  # (M, N) int32
    tiles: TileStats  # decoded statistics words, one entry per tile in row-major tile order
    col_dev: np.ndarray  # (tiles, n) int32, d_c as the hardware computed it
    row_dev: np.ndarray  # (tiles, n) int32, e_r
    plan: TilePlan


def _field(value: int, bits: tuple[int, int]) -> int:
    msb, lsb = bits
    return (value >> lsb) & ((1 << (msb - lsb + 1)) - 1)


def check_identity(ident: int, version: int) -> None:
    """Refuse anything but realm_accel with the same major and at most our minor version."""
    if ident != regmap.ID_VALUE:
        raise IncompatibleAccelerator(
            f"no realm_accel at the accelerator address: ID reads {ident:#010x}, "
            f"expected {regmap.ID_VALUE:#010x} (wrong bitstream or wrong address)"
        )
    major, minor = version >> 16, version & 0xFFFF
    host_major, host_minor = regmap.VERSION_VALUE >> 16, regmap.VERSION_VALUE & 0xFFFF
    if major != host_major or minor > host_minor:
        raise IncompatibleAccelerator(
            f"realm_accel register map version {major}.{minor} is not supported by this host "
            f"(supports {host_major}.0 to {host_major}.{host_minor}); "
            "rebuild the bitstream or update realm-hil"
        )


class AccelDriver:
    """Drive realm_accel and its AXI DMA, given their ip_dict entries (from an Overlay or SimDevice)."""

    def __init__(
        self,
        accel_ip: dict,
        dma_ip: dict,
        *,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.device = accel_ip.get("device")
        self.mmio = MMIO(accel_ip["phys_addr"], accel_ip["addr_range"], device=self.device)
        check_identity(self.mmio.read(regmap.ID), self.mmio.read(regmap.VERSION))
        params = self.mmio.read(regmap.PARAMS)
        self.array_n = _field(params, regmap.PARAMS_N)
        self.timing_emu = bool(_field(params, regmap.PARAMS_TIMING_EMU))
        self.inject = bool(_field(params, regmap.PARAMS_INJECT))
        self.emu_checks = bool(_field(params, regmap.PARAMS_EMU_CHECKS))
        self.dma = DMA(dma_ip)
        self.chunk_bytes = chunk_bytes
        self.timeout_s = timeout_s
        self._in_buf = self._out_buf = self._in_view = self._out_view = None
        self._tag_base = 0
        self.soft_reset()

    # -- registers ---------------------------------------------------------------------------

    def soft_reset(self) -> None:
        """Empty every FIFO and idle the datapath; configuration registers keep their values."""
        self.mmio.write(regmap.CTRL, 1 << regmap.CTRL_SOFT_RESET[1])
        # Stream beats sent while the datapath is still in reset would be dropped.
        busy = 1 << regmap.STATUS_BUSY[1]
        for _ in range(RESET_POLLS):
            if not self.mmio.read(regmap.STATUS) & busy:
                return
        raise RealmError(
            "realm_accel stays busy after CTRL.SOFT_RESET; reload the bitstream (or reopen the sim)"
        )

    def clear_stats(self) -> None:
        self.mmio.write(regmap.CTRL, 1 << regmap.CTRL_CLEAR_STATS[1])

    def set_policy(self, policy: PolicyConfig) -> None:
        self.mmio.write(regmap.POLICY, HW_MODES[policy.mode])
        self.mmio.write(regmap.ALPHA, policy.alpha_q8 & 0xFFFF)
        self.mmio.write(regmap.BETA, policy.beta_q8 & 0xFFFF)
        self.mmio.write(regmap.FREQ_MIN, policy.freq_min)
        self.mmio.write(regmap.MSD_THRESH_LO, policy.msd_thresh & 0xFFFFFFFF)
        self.mmio.write(regmap.MSD_THRESH_HI, policy.msd_thresh >> 32)

    def write_slack_table(self, table) -> None:
        """Per-PE timing slack L, (n, n) integers in [-128, 127]; L >= 31 is exact, L < 0 always late."""
        self._write_slack(regmap.L_TABLE_BASE, table, (self.array_n, self.array_n), "slack table")

    def write_check_slack_table(self, table) -> None:
        """Slack L of the checksum accumulators, (3, n) rows -r_c, -q_r, d_c (needs EMU_CHECKS), as the PEs'."""
        if not self.emu_checks:
            raise RealmError("this realm_accel was built without checksum emulation (EMU_CHECKS=0)")
        self._write_slack(regmap.CK_L_TABLE_BASE, table, (3, self.array_n), "check slack table")

    def _write_slack(self, base: int, table, shape: tuple[int, int], what: str) -> None:
        table = np.asarray(table)
        n = self.array_n
        if table.shape != shape:
            raise ValueError(f"{what} must be {shape} for this {n}x{n} array, got shape {table.shape}")
        if table.min() < -128 or table.max() > 127:
            raise ValueError(f"slack values must fit signed 8 bits, got range [{table.min()}, {table.max()}]")
        words = table.astype(np.int8).view(np.uint8).astype("<u4")
        self.mmio.write(base, words.tobytes())

    def enable_timing_emulation(self, enabled: bool) -> None:
        """Let the PEs use the L table (only where the bitstream was built with TIMING_EMU)."""
        if enabled and not self.timing_emu:
            raise RealmError("this realm_accel was built without timing emulation (TIMING_EMU=0)")
        bit = 1 << regmap.CONFIG_TIMING_EN[1]
        config = self.mmio.read(regmap.CONFIG)
        self.mmio.write(regmap.CONFIG, (config | bit) if enabled else (config & ~bit))

    def read_totals(self) -> dict:
        """The GEMM total registers, keyed like GemmStats.totals()."""
        r = self.mmio.read
        return {
            "tiles": r(regmap.TILES_DONE),
            "tiles_err": r(regmap.TILES_ERR),
            "tiles_recover": r(regmap.TILES_RECOVER),
            "msd": r(regmap.MSD_TOTAL_LO) | (r(regmap.MSD_TOTAL_HI) << 32),
            "freq": r(regmap.FREQ_TOTAL),
            "freq_eff": r(regmap.FREQ_EFF_TOTAL),
            "row_freq": r(regmap.ROW_FREQ_TOTAL),
            "max_abs": r(regmap.MAX_ABS),
            "hist": [r(regmap.HIST_BASE + 4 * b) for b in range(HIST_BINS)],
        }

    # -- GEMM --------------------------------------------------------------------------------

    def gemm(self, x: np.ndarray, w: np.ndarray, plan: TilePlan | None = None) -> StreamedGemm:
        """Y = X W on the accelerator (x (M, K) int8, w (K, N) int8), with per-tile statistics.

        `plan` is the caller's tile plan of this GEMM when it has one (a GemmCall's); else it is made here.
        """
        plan = plan if plan is not None else plan_for(x, w, self.array_n)
        panels = tile_operands(x, w, plan)
        per_chunk = self._reserve(plan)
        n = self.array_n
        y_tiles = np.empty((plan.count, n, n), dtype=np.int32)
        col_dev = np.empty((plan.count, n), dtype=np.int32)
        row_dev = np.empty((plan.count, n), dtype=np.int32)
        words = np.empty((plan.count, regmap.STATS_WORDS), dtype=np.uint32)
        tag_base = self._tag_base
        self._tag_base = (tag_base + plan.count) & 0xFFFF
        self.clear_stats()
        for first in range(0, plan.count, per_chunk):
            stop = min(plan.count, first + per_chunk)
            in_bytes = pack_tiles(self._in_view, panels, plan, first, stop, tag_base)
            received = self._stream(in_bytes, plan, first, stop)
            expected = (stop - first) * plan.out_tile_bytes
            out = unpack_output(self._out_view, plan, min(stop - first, received // plan.out_tile_bytes))
            check_tags(out.stats_words[:, 0] & 0xFFFF, (tag_base + np.arange(first, stop)) & 0xFFFF, first)
            if received != expected:
                raise StreamError(
                    f"tiles {first}..{stop - 1}: received {received} result bytes, expected {expected}"
                )
            y_tiles[first:stop], col_dev[first:stop], row_dev[first:stop] = out.y, out.col_dev, out.row_dev
            words[first:stop] = out.stats_words
        tiles = decode_stats_words(words)
        # the stream tags were checked above; report them as the tile index within this GEMM, as
        # every other backend does, so statistics compare field by field across backends
        tiles.tag = np.arange(plan.count, dtype=np.int64) & 0xFFFF
        return StreamedGemm(assemble(y_tiles, plan), tiles, col_dev, row_dev, plan)

    def _reserve(self, plan: TilePlan) -> int:
        """Tiles per chunk for this GEMM, growing the reused DMA buffers when they are too small."""
        limit = self.dma.buffer_max_size
        if plan.in_tile_bytes > limit or plan.out_tile_bytes > limit:
            raise InputError(
                f"one tile with K={plan.k} needs {plan.in_tile_bytes} bytes, more than the DMA's maximum "
                f"transfer of {limit} bytes; split K"
            )
        budget = min(self.chunk_bytes, limit)
        per = max(
            1,
            min(plan.count, MAX_TILES_PER_CHUNK, budget // plan.in_tile_bytes, limit // plan.out_tile_bytes),
        )
        self._in_buf, self._in_view = self._grown(self._in_buf, per * plan.in_tile_bytes)
        self._out_buf, self._out_view = self._grown(self._out_buf, per * plan.out_tile_bytes)
        return per

    def _grown(self, buf, nbytes: int):
        if buf is not None and buf.nbytes >= nbytes:
            return buf, buf.view(np.ndarray)
        if buf is not None:
            buf.freebuffer()
        buf = allocate((nbytes,), np.uint8, target=self.device)
        return buf, buf.view(np.ndarray)

    def _stream(self, in_bytes: int, plan: TilePlan, first: int, stop: int) -> int:
        """Send one chunk and receive its results; returns the result bytes received."""
        send, recv = self.dma.sendchannel, self.dma.recvchannel
        # The receive buffer is armed with all its room: extra results then show up as a length error.
        recv.transfer(self._out_buf)
        send.transfer(self._in_buf, nbytes=in_bytes)
        deadline = time.monotonic() + self.timeout_s
        # Results finish last, so polling the receive side first usually waits only once.
        for name, channel in (("S2MM (results)", recv), ("MM2S (operands)", send)):
            while not channel.idle:
                if channel.error:
                    self.recover()
                    raise RuntimeError(
                        f"AXI DMA {name} error while streaming tiles {first}..{stop - 1}; "
                        "DMA and accelerator were reset"
                    )
                if time.monotonic() > deadline:
                    status = self.mmio.read(regmap.STATUS)
                    self.recover()
                    raise AccelTimeoutError(
                        f"accelerator timed out after {self.timeout_s:g} s on tiles {first}..{stop - 1} of a "
                        f"{plan.m}x{plan.k}x{plan.n} GEMM ({name} never went idle, STATUS={status:#x}); "
                        "the accelerator and the DMA were reset",
                        first,
                        stop,
                    )
            channel.wait()
        return recv.transferred

    def recover(self) -> None:
        """Abort whatever is in flight: reset the DMA (both channels), then the accelerator datapath."""
        self.dma.mmio.write(DMACR, DMACR_RESET)
        for _ in range(DMA_RESET_POLLS):
            if not self.dma.mmio.read(DMACR) & DMACR_RESET:
                break
        self.soft_reset()
        self.dma.sendchannel.start()
        self.dma.recvchannel.start()

    def close(self) -> None:
        for buf in (self._in_buf, self._out_buf):
            if buf is not None:
                buf.freebuffer()
        self._in_buf = self._out_buf = self._in_view = self._out_view = None


def check_tags(got: np.ndarray, expected: np.ndarray, first: int) -> None:
    """Raise StreamError naming how the echoed tags differ from the tags sent (loss, duplicate, order)."""
    if np.array_equal(got, expected):
        return
    where = f"tiles {first}..{first + len(expected) - 1}"
    uniq, counts = np.unique(got, return_counts=True)
    if (counts > 1).any():
        raise StreamError(f"{where}: duplicated result tiles, tags {uniq[counts > 1][:8].tolist()}")
    unexpected = np.setdiff1d(got, expected)
    if len(unexpected):
        raise StreamError(
            f"{where}: result tiles with unexpected tags {unexpected[:8].tolist()} (stale data?)"
        )
    missing = np.setdiff1d(expected, got)
    if len(missing):
        raise StreamError(f"{where}: lost {len(missing)} result tiles, tags {missing[:8].tolist()}")
    first_bad = first + int(np.argmax(got != expected))
    raise StreamError(f"{where}: result tiles out of order, first mismatch at tile {first_bad}")
