"""realm_accel: exact tiles, checksums, statistics, registers, resets and clock crossing.

Every output is checked against the host models (realm_hil.tiling for the stream format,
realm_hil.stats for the statistics words and GEMM totals, realm_hil.timing.emulation for timing
errors in the PEs and, with EMU_CHECKS=1, in the checksum accumulators), so RTL and host agree
by construction.
"""

from __future__ import annotations

import itertools
import logging
import random
from dataclasses import dataclass
from pathlib import Path

import cocotb
import numpy as np
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, Timer
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from cocotb_build import rtl_sources, run
from realm_hil import regmap
from realm_hil.stats import GemmStats, PolicyConfig, TileStats, encode_stats_words, tile_stats
from realm_hil.tiling import TilePlan, pack_tiles, reference_deviations, tile_operands, unpack_output
from realm_hil.timing.emulation import timed_checksums, timed_dot

MODES = {"off": 0, "classic": 1, "approx": 2, "statistical": 3}


@dataclass
class Tile:
    x: np.ndarray  # (n, K) int8
    w: np.ndarray  # (K, n) int8
    tag: int
    inject: bool = False  # the injection table applies to this tile

    @property
    def exact(self) -> np.ndarray:
        return (self.x.astype(np.int64) @ self.w.astype(np.int64)).astype(np.uint32).view(np.int32)

    def timed(self, slack: np.ndarray) -> np.ndarray:
        """Y as the array computes it with per-PE slack L (n, n)."""
        return timed_dot(self.x[:, None, :], self.w.T[None, :, :], slack)

    def stream_bytes(self) -> bytes:
        n, k = self.x.shape
        plan = TilePlan(n, k, n, n)
        out = np.zeros(plan.in_tile_bytes, dtype=np.uint8)
        pack_tiles(out, tile_operands(self.x, self.w, plan), plan, 0, 1, tag_base=self.tag)
        return out.tobytes()


def random_tile(rng: np.random.Generator, n: int, k: int, tag: int) -> Tile:
    kind = rng.integers(6)
    if kind == 0:  # sparse operands, as in padded edge tiles
        x = rng.integers(-128, 128, (n, k)) * (rng.random((n, k)) < 0.2)
        w = rng.integers(-128, 128, (k, n)) * (rng.random((k, n)) < 0.2)
    elif kind == 1:  # extremes only
        x = rng.choice([-128, 127, 0, -1], (n, k))
        w = rng.choice([-128, 127, 0, 1], (k, n))
    else:
        x = rng.integers(-128, 128, (n, k))
        w = rng.integers(-128, 128, (k, n))
    return Tile(x.astype(np.int8), w.astype(np.int8), tag)


def random_k(rng: np.random.Generator) -> int:
    return int(rng.integers(65, 200)) if rng.random() < 0.1 else int(rng.integers(1, 65))


def cycle_pause():
    return itertools.cycle([1, 1, 1, 0])


def random_pause(seed: int, p: float):
    rng = random.Random(seed)
    while True:
        yield int(rng.random() < p)


class TB:
    def __init__(self, dut, array_period: float = 10, aclk_period: float = 10):
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        self.log.setLevel(logging.INFO)
        self.n = len(dut.s_axis_tdata) // 16
        cocotb.start_soon(Clock(dut.aclk, aclk_period, unit="ns").start())
        cocotb.start_soon(Clock(dut.array_clk, array_period, unit="ns").start())
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.aclk, dut.aresetn,
                                  reset_active_level=False)
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.aclk, dut.aresetn,
                                      reset_active_level=False)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.aclk, dut.aresetn,
                                  reset_active_level=False)
        # the bus models log every frame and transaction at INFO
        for bus in ("s_axil", "s_axis", "m_axis"):
            logging.getLogger(f"cocotb.{dut._name}.{bus}").setLevel(logging.WARNING)
        self.policy = PolicyConfig()
        self.inj = np.zeros((self.n, self.n), dtype=np.uint32)
        self.plan = TilePlan(self.n, 1, self.n, self.n)
        self.emu_checks = bool(int(dut.EMU_CHECKS.value))
        # timing emulation as loaded by set_timing; None: CONFIG.TIMING_EN off or every L exact
        self.pe_slack: np.ndarray | None = None
        self.check_slack: np.ndarray | None = None

    def set_idle_generator(self, generator=None):
        if generator:
            self.source.set_pause_generator(generator())

    def set_backpressure_generator(self, generator=None):
        if generator:
            self.sink.set_pause_generator(generator())

    async def cycle_reset(self):
        self.dut.aresetn.value = 0
        await ClockCycles(self.dut.aclk, 4)
        await ClockCycles(self.dut.array_clk, 4)
        self.dut.aresetn.value = 1
        await self.wait_idle()

    async def read(self, offset: int) -> int:
        return await self.axil.read_dword(offset)

    async def write(self, offset: int, value: int):
        await self.axil.write_dword(int(offset), int(value) & 0xFFFFFFFF)

    async def wait_idle(self, limit: int = 2000):
        """Poll STATUS until BUSY is clear."""
        for _ in range(limit):
            if not await self.read(regmap.STATUS) & 1:
                return
        raise AssertionError("STATUS.BUSY never cleared")

    async def set_policy(self, policy: PolicyConfig):
        self.policy = policy
        await self.write(regmap.POLICY, MODES[policy.mode])
        await self.write(regmap.ALPHA, policy.alpha_q8)
        await self.write(regmap.BETA, policy.beta_q8)
        await self.write(regmap.FREQ_MIN, policy.freq_min)
        await self.write(regmap.MSD_THRESH_LO, policy.msd_thresh & 0xFFFFFFFF)
        await self.write(regmap.MSD_THRESH_HI, policy.msd_thresh >> 32)

    async def set_injection(self, masks: np.ndarray):
        """Load INJ_TABLE, writing only the entries that change."""
        for r, c in zip(*np.nonzero(masks != self.inj), strict=True):
            await self.write(regmap.INJ_TABLE_BASE + 4 * (r * self.n + c), int(masks[r, c]))
        self.inj = masks.astype(np.uint32).copy()

    async def set_timing(self, pe_slack: np.ndarray, check_slack: np.ndarray, enabled: bool = True):
        """Load L_TABLE (n, n) and CK_L_TABLE (3, n) and switch CONFIG.TIMING_EN."""
        for i, value in enumerate(pe_slack.ravel()):
            await self.write(regmap.L_TABLE_BASE + 4 * i, int(value))
        for i, value in enumerate(check_slack.ravel()):
            await self.write(regmap.CK_L_TABLE_BASE + 4 * i, int(value))
        await self.write(regmap.CONFIG, int(enabled) << regmap.CONFIG_TIMING_EN[0])
        self.pe_slack = pe_slack.copy() if enabled else None
        self.check_slack = check_slack.copy() if enabled else None

    def expected(self, tiles: list[Tile]):
        """Results, deviations and statistics the accelerator must send for these tiles."""
        exact = np.stack([t.exact for t in tiles])
        y = exact.copy() if self.pe_slack is None else np.stack([t.timed(self.pe_slack) for t in tiles])
        for i, t in enumerate(tiles):
            if t.inject:
                y[i] = (y[i].view(np.uint32) ^ self.inj).view(np.int32)
        if self.check_slack is None:
            d, e = reference_deviations(y, exact)
        else:
            # one tile at a time: tiles of a transfer differ in K
            de = [timed_checksums(t.x[None], t.w[None], y[i:i + 1], self.check_slack) for i, t in enumerate(tiles)]
            d, e = (np.concatenate(part) for part in zip(*de, strict=True))
        stats = tile_stats(d, e, self.policy, tags=np.array([t.tag for t in tiles]))
        return y, d, e, stats

    async def run_tiles(self, tiles: list[Tile], rng: np.random.Generator, max_per_transfer: int = 6):
        """Send the tiles in random-sized transfers and check every output beat; returns their stats."""
        transfers = []
        i = 0
        while i < len(tiles):
            count = int(rng.integers(1, max_per_transfer + 1))
            transfers.append(tiles[i:i + count])
            i += count
        for group in transfers:
            await self.source.send(AxiStreamFrame(b"".join(t.stream_bytes() for t in group)))
        parts = []
        for group in transfers:
            frame = await self.sink.recv()
            parts.append(self.check_output(group, bytes(frame.tdata)))
        return TileStats.concat(parts)

    def check_output(self, tiles: list[Tile], raw: bytes) -> TileStats:
        assert len(raw) == len(tiles) * self.plan.out_tile_bytes, (
            f"output of {len(raw)} bytes for {len(tiles)} tiles")
        out = unpack_output(np.frombuffer(raw, dtype=np.uint8), self.plan, len(tiles))
        y, d, e, stats = self.expected(tiles)
        tags = [t.tag for t in tiles]
        got_tags = [int(w) & 0xFFFF for w in out.stats_words[:, 0]]
        assert got_tags == tags, f"tags {got_tags} != {tags}"
        for i, t in enumerate(tiles):
            assert np.array_equal(out.y[i], y[i]), f"tile {t.tag} K={t.x.shape[1]}: Y differs"
        assert np.array_equal(out.col_dev, d), f"d: got {out.col_dev.tolist()} want {d.tolist()}"
        assert np.array_equal(out.row_dev, e), f"e: got {out.row_dev.tolist()} want {e.tolist()}"
        want_words = encode_stats_words(stats)
        assert np.array_equal(out.stats_words, want_words), (
            f"stats words:\n got {out.stats_words.tolist()}\nwant {want_words.tolist()}")
        return stats

    async def check_totals(self, stats: TileStats):
        want = GemmStats(stats).totals()
        got = {
            "tiles": await self.read(regmap.TILES_DONE),
            "tiles_err": await self.read(regmap.TILES_ERR),
            "tiles_recover": await self.read(regmap.TILES_RECOVER),
            "msd": await self.read(regmap.MSD_TOTAL_LO) | (await self.read(regmap.MSD_TOTAL_HI) << 32),
            "freq": await self.read(regmap.FREQ_TOTAL),
            "freq_eff": await self.read(regmap.FREQ_EFF_TOTAL),
            "row_freq": await self.read(regmap.ROW_FREQ_TOTAL),
            "max_abs": await self.read(regmap.MAX_ABS),
            "hist": [await self.read(regmap.HIST_BASE + 4 * b) for b in range(32)],
        }
        want["msd"] %= 1 << 64
        assert got == want, f"totals: got {got} want {want}"

    async def clear_stats(self):
        await self.write(regmap.CTRL, 1 << regmap.CTRL_CLEAR_STATS[0])

    async def soft_reset(self):
        await self.write(regmap.CTRL, 1 << regmap.CTRL_SOFT_RESET[0])
        await self.wait_idle()


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def run_test_registers(dut):
    """Constant, parameter and configuration registers; L_TABLE resets to 31; unmapped reads 0."""
    tb = TB(dut)
    await tb.cycle_reset()
    n = tb.n
    assert await tb.read(regmap.ID) == regmap.ID_VALUE
    assert await tb.read(regmap.VERSION) == regmap.VERSION_VALUE
    assert await tb.read(regmap.PARAMS) == n | 1 << 8 | 1 << 9
    assert await tb.read(regmap.STATUS) == 0
    for i in range(n * n):
        assert await tb.read(regmap.L_TABLE_BASE + 4 * i) == 31, f"L_TABLE[{i}] reset value"
    rw = [(regmap.CONFIG, 0x7, 0x7), (regmap.POLICY, 0xFFFFFFFF, 0x3), (regmap.ALPHA, -300, -300),
          (regmap.BETA, 0x7FFF, 0x7FFF), (regmap.FREQ_MIN, 0x12345, 0x2345),
          (regmap.MSD_THRESH_LO, 0xDEADBEEF, 0xDEADBEEF), (regmap.MSD_THRESH_HI, 0x12345678, 0x12345678),
          (regmap.INJ_TAG, 0xFFFF1234, 0x1234), (regmap.L_TABLE_BASE + 4 * (n * n - 1), -5, -5),
          (regmap.L_TABLE_BASE + 4, 0x107, 7), (regmap.INJ_TABLE_BASE + 4 * (n * n - 1), 0xA5A5F00F, 0xA5A5F00F)]
    for offset, value, want in rw:
        await tb.write(offset, value)
        assert await tb.read(offset) == want & 0xFFFFFFFF, f"readback of 0x{offset:x}"
    for offset in (regmap.ID, regmap.TILES_DONE, regmap.HIST_BASE):
        before = await tb.read(offset)
        await tb.write(offset, 0x55555555)
        assert await tb.read(offset) == before, f"read-only 0x{offset:x} changed"
    unmapped = [0x034, 0x06C, 0x07C, 0x100, 0xFFC, regmap.L_TABLE_BASE + 4 * n * n,
                regmap.INJ_TABLE_BASE + 4 * n * n, 0x3000, 0x3FFC]
    for offset in unmapped:
        await tb.write(offset, 0xFFFFFFFF)
        assert await tb.read(offset) == 0, f"unmapped 0x{offset:x}"
    assert await tb.read(regmap.CTRL) == 0
    assert await tb.read(regmap.L_TABLE_BASE + 4 * (n * n - 1)) == (-5) & 0xFFFFFFFF


@cocotb.test(timeout_time=100, timeout_unit="ms")
@cocotb.parametrize(idle_inserter=[None, cycle_pause], backpressure_inserter=[None, cycle_pause])
async def run_test_random_tiles(dut, idle_inserter, backpressure_inserter):
    """Random tiles in random transfers: exact Y, zero deviations, tags in order, totals."""
    tb = TB(dut)
    await tb.cycle_reset()
    tb.set_idle_generator(idle_inserter)
    tb.set_backpressure_generator(backpressure_inserter)
    seed = 2 * (idle_inserter is not None) + (backpressure_inserter is not None)
    rng = np.random.default_rng(seed)
    count = 200 if seed == 0 else 40
    await tb.set_policy(PolicyConfig("classic"))
    tiles = [random_tile(rng, tb.n, random_k(rng), (seed << 12) + i) for i in range(count)]
    stats = await tb.run_tiles(tiles, rng)
    await tb.wait_idle()
    await tb.check_totals(stats)
    assert not await tb.read(regmap.STATUS)


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def run_test_extremes(dut):
    """All -128, all 127, mixed signs, and one tile long enough for int32 to wrap."""
    tb = TB(dut)
    await tb.cycle_reset()
    n = tb.n
    rng = np.random.default_rng(7)
    tiles = []
    for i, (xv, wv, k) in enumerate([(-128, -128, 64), (127, 127, 64), (-128, 127, 200), (127, -128, 1),
                                     (-128, -128, 1), (0, 0, 5)]):
        tiles.append(Tile(np.full((n, k), xv, np.int8), np.full((k, n), wv, np.int8), i))
    stats = await tb.run_tiles(tiles, rng)

    # (-128)^2 * 131200 > 2^31: every Y wraps; drive the identical beats directly, the
    # stream model would spend most of the run packing bytes
    k = 131_200
    wrap = Tile(np.full((n, 1), -128, np.int8), np.full((1, n), -128, np.int8), 0xBEEF)
    header = wrap.stream_bytes()[:2 * n]
    header = header[:4] + k.to_bytes(4, "little") + header[8:]
    await tb.source.send(AxiStreamFrame(header))
    await tb.source.wait()
    await drive_constant_beats(tb, int.from_bytes(wrap.stream_bytes()[2 * n:], "little"), k)
    frame = await tb.sink.recv()
    big = Tile(np.full((n, k), -128, np.int8), np.full((k, n), -128, np.int8), 0xBEEF)
    assert int(big.exact[0, 0]) == ((128 * 128 * k + (1 << 31)) % (1 << 32)) - (1 << 31) < 0
    stats = TileStats.concat([stats, tb.check_output([big], bytes(frame.tdata))])
    await tb.wait_idle()
    await tb.check_totals(stats)


async def drive_constant_beats(tb: TB, beat: int, count: int):
    """Hold one operand beat on s_axis until `count` handshakes, tlast on the final one."""
    dut = tb.dut
    dut.s_axis_tdata.value = beat
    dut.s_axis_tkeep.value = (1 << (2 * tb.n)) - 1
    dut.s_axis_tlast.value = int(count == 1)
    dut.s_axis_tvalid.value = 1
    sent = 0
    while sent < count:
        await RisingEdge(dut.aclk)
        if dut.s_axis_tready.value:
            sent += 1
            dut.s_axis_tlast.value = int(sent == count - 1)
    dut.s_axis_tvalid.value = 0
    dut.s_axis_tlast.value = 0


def injection_cases(n: int, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    cases = []
    m = np.zeros((n, n), np.uint32)
    m[n // 2, n - 1] = 1 << 30
    cases.append(("single bit 30", m))
    m = np.zeros((n, n), np.uint32)
    m[[0, 2, 3], 1] = [1 << 22, 1 << 10, 1]
    cases.append(("three in one column", m))
    m = np.zeros((n, n), np.uint32)
    m[1, 0] = 1 << 31
    m[n - 1, 0] = 1 << 31
    m[0, n - 1] = 1 << 31
    cases.append(("sign flips, d = -2^31 and 2^32", m))
    m = (rng.random((n, n)) < 0.3) * (np.uint32(1) << rng.integers(0, 4, (n, n)).astype(np.uint32))
    cases.append(("many small", m.astype(np.uint32)))
    cases.append(("every cell bit 22", np.full((n, n), 1 << 22, np.uint32)))
    cases.append(("random words", rng.integers(0, 1 << 32, (n, n), dtype=np.uint64).astype(np.uint32)))
    return cases


POLICIES_UNDER_TEST = {
    "off": PolicyConfig("off", 256, 0, 1, 0),
    "classic": PolicyConfig("classic", 0, 0, 1, 0),
    "approx": PolicyConfig("approx", 0, 0, 1, 1 << 30),
    "statistical": PolicyConfig("statistical", 384, -25 * 256, 2, 0),
}


@cocotb.test(timeout_time=100, timeout_unit="ms")
@cocotb.parametrize(mode=list(POLICIES_UNDER_TEST), backpressure_inserter=[None, cycle_pause])
async def run_test_injection(dut, mode, backpressure_inserter):
    """INJ_TABLE errors give the model's d, e, statistics words and GEMM totals, per policy."""
    tb = TB(dut)
    await tb.cycle_reset()
    tb.set_backpressure_generator(backpressure_inserter)
    n = tb.n
    rng = np.random.default_rng(list(MODES).index(mode))
    await tb.set_policy(POLICIES_UNDER_TEST[mode])
    for name, masks in injection_cases(n, rng):
        await tb.set_injection(masks)
        for match_tag in (False, True):
            tb.log.info("injection %s, match_tag=%s", name, match_tag)
            tiles = [random_tile(rng, n, int(rng.integers(3 * n, 4 * n)), int(rng.integers(1 << 16)))
                     for _ in range(4)]
            target = tiles[2].tag
            for t in tiles:
                t.inject = not match_tag or t.tag == target
            await tb.write(regmap.INJ_TAG, target)
            await tb.write(regmap.CONFIG, 1 << regmap.CONFIG_INJ_EN[0] | match_tag << regmap.CONFIG_INJ_MATCH_TAG[0])
            await tb.clear_stats()
            stats = await tb.run_tiles(tiles, rng, max_per_transfer=4)
            await tb.wait_idle()
            await tb.check_totals(stats)
    await tb.write(regmap.CONFIG, 0)
    await tb.clear_stats()
    await tb.check_totals(TileStats.concat([]))
    assert await tb.read(regmap.BUSY_CYCLES_LO) == 0


@cocotb.test(timeout_time=50, timeout_unit="ms")
async def run_test_busy_cycles(dut):
    """BUSY_CYCLES counts while tiles are in flight and CLEAR_STATS zeroes it with the totals."""
    tb = TB(dut)
    await tb.cycle_reset()
    await tb.clear_stats()
    rng = np.random.default_rng(11)
    tiles = [random_tile(rng, tb.n, 3 * tb.n, i) for i in range(8)]
    stats = await tb.run_tiles(tiles, rng)
    await tb.wait_idle()
    busy = await tb.read(regmap.BUSY_CYCLES_LO)
    assert 8 * (3 * tb.n + 1) <= busy < 8 * (3 * tb.n + 1) + 40 * tb.n, f"BUSY_CYCLES {busy}"
    await tb.check_totals(stats)
    await tb.clear_stats()
    await tb.check_totals(TileStats.concat([]))
    assert await tb.read(regmap.BUSY_CYCLES_LO) == 0
    assert await tb.read(regmap.BUSY_CYCLES_HI) == 0


@cocotb.test(timeout_time=50, timeout_unit="ms")
async def run_test_throughput(dut):
    """With K = 3N the operand stream is accepted at one beat per cycle across tiles."""
    tb = TB(dut)
    await tb.cycle_reset()
    n = tb.n
    rng = np.random.default_rng(5)
    k = 3 * n
    tiles = [random_tile(rng, n, k, i) for i in range(24)]
    frame = AxiStreamFrame(b"".join(t.stream_bytes() for t in tiles))
    receive = cocotb.start_soon(tb.sink.recv())
    await RisingEdge(tb.dut.aclk)
    stalls = 0
    await tb.source.send(frame)
    started = False
    while not (started and tb.source.idle()):
        await RisingEdge(tb.dut.aclk)
        if tb.dut.s_axis_tvalid.value:
            started = True
            stalls += not tb.dut.s_axis_tready.value
    tb.check_output(tiles, bytes((await receive).tdata))
    tb.log.info("N=%d K=%d: %d stall cycles over %d beats", n, k, stalls, len(tiles) * (k + 1))
    # the first tiles fill the pipeline; after that no tile may cost extra cycles
    assert stalls <= 4 * n, f"{stalls} stall cycles"


@cocotb.test(timeout_time=50, timeout_unit="ms")
async def run_test_soft_reset(dut):
    """SOFT_RESET mid-tile, and with a finished tile held in the output: clean idle, config kept."""
    tb = TB(dut)
    await tb.cycle_reset()
    n = tb.n
    rng = np.random.default_rng(3)
    await tb.set_policy(PolicyConfig("approx", 0, 0, 1, 1000))
    await tb.write(regmap.CONFIG, 1 << regmap.CONFIG_TIMING_EN[0])

    # a header promising K = 200, then only 50 operand beats
    partial = random_tile(rng, n, 200, 0x11).stream_bytes()[:51 * 2 * n]
    await tb.source.send(AxiStreamFrame(partial))
    await tb.source.wait()
    await ClockCycles(dut.aclk, 20)
    assert await tb.read(regmap.STATUS) & 1
    await tb.soft_reset()

    # a whole tile computed but stuck behind a stalled output
    tb.sink.pause = True
    await tb.source.send(AxiStreamFrame(random_tile(rng, n, 40, 0x22).stream_bytes()))
    await tb.source.wait()
    await ClockCycles(dut.aclk, 120)
    assert dut.m_axis_tvalid.value == 1
    await tb.soft_reset()
    assert dut.m_axis_tvalid.value == 0
    tb.sink.pause = False

    assert await tb.read(regmap.STATUS) == 0
    assert await tb.read(regmap.POLICY) == MODES["approx"]
    assert await tb.read(regmap.MSD_THRESH_LO) == 1000
    assert await tb.read(regmap.CONFIG) == 1
    await tb.check_totals(TileStats.concat([]))
    assert tb.sink.empty()
    tiles = [random_tile(rng, n, random_k(rng), 0x33 + i) for i in range(6)]
    stats = await tb.run_tiles(tiles, rng)
    await tb.wait_idle()
    await tb.check_totals(stats)


@cocotb.test(timeout_time=50, timeout_unit="ms")
async def run_test_framing_error(dut):
    """Bad magic or K = 0 sets STATUS.FRAMING_ERR and drops up to tlast; later transfers are exact."""
    tb = TB(dut)
    await tb.cycle_reset()
    n = tb.n
    rng = np.random.default_rng(4)
    good = random_tile(rng, n, 9, 0x44)
    bad_magic = bytearray(good.stream_bytes())
    bad_magic[0] ^= 0x01
    # the dropped beats include a valid-looking header, which must not start a tile
    await tb.source.send(AxiStreamFrame(bytes(bad_magic) + good.stream_bytes()))
    await tb.source.wait()
    await tb.wait_idle()
    assert await tb.read(regmap.STATUS) == 2
    zero_k = bytearray(good.stream_bytes()[:2 * n])
    zero_k[4:8] = bytes(4)
    await tb.source.send(AxiStreamFrame(bytes(zero_k)))
    await tb.source.wait()
    await tb.wait_idle()
    assert tb.sink.empty()
    stats = await tb.run_tiles([good, random_tile(rng, n, 30, 0x45)], rng, max_per_transfer=1)
    await tb.check_totals(stats)
    assert await tb.read(regmap.STATUS) == 2
    await tb.soft_reset()
    assert await tb.read(regmap.STATUS) == 0


@cocotb.test(timeout_time=100, timeout_unit="ms")
@cocotb.parametrize(array_period=[7, 23])
async def run_test_clock_ratio(dut, array_period):
    """array_clk faster and slower than aclk, with random bubbles and back-pressure, stays exact."""
    tb = TB(dut, array_period=array_period)
    await tb.cycle_reset()
    tb.source.set_pause_generator(random_pause(array_period, 0.2))
    tb.sink.set_pause_generator(random_pause(array_period + 1, 0.3))
    rng = np.random.default_rng(array_period)
    # nominal L = 31 with timing emulation on is exact too
    await tb.write(regmap.CONFIG, 1 << regmap.CONFIG_TIMING_EN[0])
    await tb.set_policy(PolicyConfig("statistical", 256, 0, 1, 0))
    tiles = [random_tile(rng, tb.n, random_k(rng), i) for i in range(30)]
    stats = await tb.run_tiles(tiles, rng)
    await tb.wait_idle()
    await tb.check_totals(stats)
    # a soft reset whose stretch must reach the slow clock, then exact again
    await tb.soft_reset()
    await Timer(1, unit="us")
    stats = await tb.run_tiles([random_tile(rng, tb.n, random_k(rng), 100 + i) for i in range(5)], rng)
    await tb.check_totals(stats)


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def run_test_check_registers(dut):
    """EMU_CHECKS=1: PARAMS reports it, CK_L_TABLE resets to 31, reads back sign-extended, ends at 3N."""
    tb = TB(dut)
    if not tb.emu_checks:
        pytest.skip("needs a build with EMU_CHECKS=1")
    await tb.cycle_reset()
    n = tb.n
    assert await tb.read(regmap.PARAMS) == n | 1 << 8 | 1 << 9 | 1 << 10
    for i in range(3 * n):
        assert await tb.read(regmap.CK_L_TABLE_BASE + 4 * i) == 31, f"CK_L_TABLE[{i}] reset value"
    for offset, value, want in [(regmap.CK_L_TABLE_BASE, -5, -5), (regmap.CK_L_TABLE_BASE + 4 * (3 * n - 1), 0x107, 7)]:
        await tb.write(offset, value)
        assert await tb.read(offset) == want & 0xFFFFFFFF, f"readback of 0x{offset:x}"
    for offset in (regmap.CK_L_TABLE_BASE + 4 * 3 * n, 0x3FFC):
        await tb.write(offset, 0xFFFFFFFF)
        assert await tb.read(offset) == 0, f"unmapped 0x{offset:x}"


def check_slack_cases(n: int, rng: np.random.Generator) -> list[tuple[str, np.ndarray, np.ndarray, bool, bool | None]]:
    """(name, PE slack (n, n), checksum slack (3, n), CONFIG.TIMING_EN, every tile flagged / none / either)."""
    exact_pe = np.full((n, n), 31)
    exact_ck = np.full((3, n), 31)
    onset_ck = rng.integers(18, 32, (3, n))
    heavy_ck = rng.integers(0, 16, (3, n))
    heavy_ck[:2, 1] = -1  # reference accumulators that never leave 0
    return [
        ("everything exact, emulation on", exact_pe, exact_ck, True, False),
        ("exact PEs, checksums at onset", exact_pe, onset_ck, True, None),
        ("exact PEs, checksums heavily overclocked", exact_pe, heavy_ck, True, True),
        ("erring PEs, exact checksums", rng.integers(20, 30, (n, n)), exact_ck, True, None),
        ("both erring, every L class", rng.integers(16, 32, (n, n)), rng.integers(-1, 32, (3, n)), True, None),
        ("tables loaded, emulation off", rng.integers(0, 31, (n, n)), heavy_ck, False, False),
    ]


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def run_test_emulated_checks(dut):
    """EMU_CHECKS=1: results, deviations, statistics words and totals follow the timing model with
    the checksum accumulators emulated, including false alarms on exact results."""
    tb = TB(dut)
    if not tb.emu_checks:
        pytest.skip("needs a build with EMU_CHECKS=1")
    await tb.cycle_reset()
    tb.set_backpressure_generator(cycle_pause)
    n = tb.n
    rng = np.random.default_rng(21)
    await tb.set_policy(POLICIES_UNDER_TEST["statistical"])
    for i, (name, pe_slack, check_slack, enabled, flagged) in enumerate(check_slack_cases(n, rng)):
        tb.log.info("emulated checks: %s", name)
        await tb.set_timing(pe_slack, check_slack, enabled)
        await tb.clear_stats()
        # K of 3N..6N: the accumulators cross zero many times, so short slacks really err
        tiles = [random_tile(rng, n, int(rng.integers(3 * n, 6 * n)), (i << 8) + j) for j in range(8)]
        stats = await tb.run_tiles(tiles, rng, max_per_transfer=4)
        await tb.wait_idle()
        await tb.check_totals(stats)
        if flagged is not None:
            assert stats.any_err.all() if flagged else not stats.any_err.any(), (
                f"{name}: tiles flagged {stats.any_err.tolist()}")
    await tb.set_timing(np.full((n, n), 31), np.full((3, n), 31), False)


@pytest.mark.rtl
@pytest.mark.parametrize("n", [8, 16])
def test_realm_accel(n):
    run(
        toplevel="realm_accel",
        sources=rtl_sources("realm_accel"),
        test_module="test_realm_accel",
        test_dir=Path(__file__).parent,
        parameters={"N": n, "TIMING_EMU": 1, "INJECT": 1},
    )


@pytest.mark.rtl
def test_realm_accel_emulated_checks():
    run(
        toplevel="realm_accel",
        sources=rtl_sources("realm_accel"),
        test_module="test_realm_accel",
        test_dir=Path(__file__).parent,
        parameters={"N": 8, "TIMING_EMU": 1, "INJECT": 1, "EMU_CHECKS": 1},
        testcase=["run_test_check_registers", "run_test_emulated_checks"],
    )
