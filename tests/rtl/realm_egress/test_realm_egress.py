"""realm_egress: per tile the N result rows (with the test-only injection XOR), the column
deviations d_c = o_c - r_c and row deviations e_r = p_r - q_r recomputed here from the rows and
the reference checksums (d through the timing model when EMU_CHECKS emulates it), the statistics
words in the layout of rtl/README.md, tlast, tile_done and the ref-queue pop, under input idles,
late ref entries, slow statistics and output back-pressure."""

from __future__ import annotations

import itertools
import logging
import random
from dataclasses import dataclass
from pathlib import Path

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, ReadWrite, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamSink

from cocotb_build import rtl_sources, run

MASK32 = 0xFFFFFFFF
STATS_WORDS = 16  # rtl/README.md, "Statistics words"


def cycle_pause():
    return itertools.cycle([1, 1, 1, 0])


def random_pause(seed: int = 1, p: float = 0.4):
    rng = random.Random(seed)
    while True:
        yield int(rng.random() < p)


def timed_add(a: int, b: int, slack: int, enabled: bool) -> int:
    """acc <- a + b under the timing-error model (rtl/README.md, docs/timing-error-model.md)."""
    s = (a + b) & MASK32
    if not enabled or slack >= 31:
        return s
    if slack < 0:
        return a
    p = a ^ b
    late = s ^ p  # the carries
    for i in range(1, slack + 1):
        late &= (p << i) & MASK32
    return (s & ~late | a & late) & MASK32


def pack(words: list[int], bits: int = 32) -> int:
    return sum((w & ((1 << bits) - 1)) << (bits * i) for i, w in enumerate(words))


@dataclass
class Stats:
    """What realm_stats hands over for one tile (random here: the egress only packs it)."""

    recover: int
    any_err: int
    msd: int
    max_abs: int
    theta: int
    freq: int
    freq_eff: int
    row_freq: int
    hist: list[int]

    def words(self, tag: int) -> list[int]:
        """The 16 statistics words of rtl/README.md's table."""
        return [tag | self.recover << 16 | self.any_err << 17, self.msd & MASK32, self.msd >> 32, self.max_abs,
                self.theta, self.freq | self.freq_eff << 16, self.row_freq, 0] + [
                    pack(self.hist[4 * i:4 * i + 4], 8) for i in range(8)]


def random_stats(rng: random.Random) -> Stats:
    return Stats(rng.getrandbits(1), rng.getrandbits(1), rng.getrandbits(64), rng.getrandbits(32),
                 rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(16), rng.getrandbits(16),
                 [rng.getrandbits(8) for _ in range(32)])


@dataclass
class Tile:
    tag: int
    tlast: bool
    y: list[list[int]]  # y[r][c]: result rows as the array sends them, uint32
    col_neg: list[int]  # -r_c from the ref queue
    row_neg: list[int]  # -q_r
    stats: Stats

    def ref(self, n: int) -> int:
        return self.tag << (64 * n + 1) | int(self.tlast) << (64 * n) | pack(self.row_neg) << (32 * n) | pack(
            self.col_neg)


class TB:
    def __init__(self, dut, seed: int):
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        self.n = int(dut.N.value)
        self.inject = bool(int(dut.INJECT.value))
        self.emu_checks = bool(int(dut.EMU_CHECKS.value))
        self.rng = random.Random(seed)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
        logging.getLogger(f"cocotb.{dut._name}.m_axis").setLevel(logging.WARNING)
        self.idle = itertools.repeat(0)
        self.ref_delay = itertools.repeat(0)
        self.stats_delay = itertools.repeat(0)
        self.slack = [31] * self.n
        self.timing_en = False
        self.inj = [[0] * self.n for _ in range(self.n)]
        self.inj_cfg = (False, False, 0)  # inj_en, inj_match_tag, inj_tag
        for name in ("timing_en", "ck_slack", "res_valid", "res_data", "ref_valid", "ref_data", "inj_en",
                     "inj_match_tag", "inj_tag", "inj_row", "stats_done"):
            getattr(dut, name).value = 0
        self.tiles: list[Tile] = []
        self.rows: list[int] = []  # result rows still to offer
        self.refq: list[tuple[int, int]] = []  # (arrival cycle, ref_data)
        self.stats_started = 0
        self.done_tiles = 0
        self.pops = 0
        self.cycle = 0

    def set_idle_generator(self, generator=None):
        if generator:
            self.idle = generator()

    def set_backpressure_generator(self, generator=None):
        if generator:
            self.sink.set_pause_generator(generator())

    def configure(self, slack: list[int] | None = None, timing_en: bool = False, inj=None, inj_cfg=None):
        """Quasi-static configuration, changed only while the egress is idle."""
        dut = self.dut
        if slack is not None:
            self.slack = slack
            dut.ck_slack.value = pack(slack, 8)
        self.timing_en = timing_en
        dut.timing_en.value = int(timing_en)
        if inj is not None:
            self.inj = inj
        if inj_cfg is not None:
            self.inj_cfg = inj_cfg
            dut.inj_en.value = int(inj_cfg[0])
            dut.inj_match_tag.value = int(inj_cfg[1])
            dut.inj_tag.value = inj_cfg[2]

    async def cycle_reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        cocotb.start_soon(self._neighbours())

    def queue(self, tile: Tile):
        """Offer a tile's rows and, `next(ref_delay)` cycles from now, its ref-queue entry."""
        self.tiles.append(tile)
        self.rows += [pack(row) for row in tile.y]
        arrival = max([self.cycle + next(self.ref_delay)] + [a for a, _ in self.refq[-1:]])
        self.refq.append((arrival, tile.ref(self.n)))

    async def _neighbours(self):
        """Everything around the egress, one cycle at a time: the result FIFO (a row stays offered
        until taken), the ref queue head, realm_stats (done falls with stats_start and rises
        `next(stats_delay)` cycles later; garbage outputs meanwhile), the injection table read by
        inj_row_idx; and the checks that need cycle timing."""
        dut = self.dut
        n = self.n
        offered = None
        stats_due = None
        stats_tile = None
        dev = None
        held = None
        while True:
            # registered outputs have settled after the edge; drive this cycle's inputs
            await ReadWrite()
            if offered is None and self.rows and not next(self.idle):
                offered = self.rows[0]
            dut.res_valid.value = int(offered is not None)
            dut.res_data.value = offered if offered is not None else self.rng.getrandbits(32 * n)
            head = self.refq[0][1] if self.refq and self.refq[0][0] <= self.cycle else None
            dut.ref_valid.value = int(head is not None)
            dut.ref_data.value = head if head is not None else self.rng.getrandbits(64 * n + 17)
            done = stats_due is not None and self.cycle >= stats_due
            dut.stats_done.value = int(done)
            self.drive_stats(stats_tile.stats if done else random_stats(self.rng))
            row = int(dut.inj_row_idx.value)
            dut.inj_row.value = pack(self.inj[row]) if row < n else self.rng.getrandbits(32 * n)
            await ReadOnly()
            if offered is not None and dut.res_ready.value:
                self.rows.pop(0)
                offered = None
            if head is not None and dut.ref_ready.value:
                self.refq.pop(0)
                self.pops += 1
                assert self.pops == self.done_tiles + 1, "ref entry popped before its tile's last beat"
            current = (int(dut.dev_col.value), int(dut.dev_row.value))
            if dut.stats_start.value:
                assert self.stats_started == self.done_tiles, "stats_start twice in a tile"
                stats_tile = self.tiles[self.stats_started]
                d, e = self.deviations(stats_tile)
                assert current == (pack(d), pack(e)), (
                    f"tile {self.stats_started}: at stats_start d={self.words(current[0])} "
                    f"e={self.words(current[1])}, want d={self.words(pack(d))} e={self.words(pack(e))}")
                dev = current
                self.stats_started += 1
                stats_due = self.cycle + 1 + next(self.stats_delay)
            elif dev is not None:
                assert current == dev, "d or e changed before the tile was finished"
            if dut.tile_done.value:
                tile = self.tiles[self.done_tiles]
                beat = int(dut.m_axis_tdata.value)
                assert dut.m_axis_tvalid.value and beat == self.expected(tile)[-1][0], (
                    "tile_done must come with the tile's last statistics beat")
                self.done_tiles += 1
                dev = None
            beat = (int(dut.m_axis_tvalid.value), int(dut.m_axis_tdata.value), int(dut.m_axis_tlast.value))
            assert held is None or beat == held, "m_axis beat changed before tready"
            held = beat if beat[0] and not dut.m_axis_tready.value else None
            if beat[0]:
                assert dut.busy.value, "busy must cover a beat waiting on m_axis"
            await RisingEdge(dut.clk)
            self.cycle += 1

    def drive_stats(self, s: Stats):
        dut = self.dut
        dut.stats_recover.value = s.recover
        dut.stats_any_err.value = s.any_err
        dut.stats_msd.value = s.msd
        dut.stats_max_abs.value = s.max_abs
        dut.stats_theta.value = s.theta
        dut.stats_freq.value = s.freq
        dut.stats_freq_eff.value = s.freq_eff
        dut.stats_row_freq.value = s.row_freq
        dut.stats_hist.value = pack(s.hist, 8)

    def words(self, value: int) -> list[str]:
        return [f"{value >> (32 * i) & MASK32:08x}" for i in range(self.n)]

    def injected(self, tile: Tile) -> list[list[int]]:
        """Y as observed and sent: XOR INJ_TABLE in while injection is on for this tile."""
        inj_en, match_tag, inj_tag = self.inj_cfg
        active = self.inject and inj_en and (not match_tag or tile.tag == inj_tag)
        if not active:
            return tile.y
        return [[y ^ m for y, m in zip(yr, mr, strict=True)] for yr, mr in zip(tile.y, self.inj, strict=True)]

    def deviations(self, tile: Tile) -> tuple[list[int], list[int]]:
        """d_c = -r_c + sum_r Y[r,c] (an accumulator from -r_c, timed with EMU_CHECKS) and
        e_r = sum_c Y[r,c] + -q_r (one adder tree per row, always exact)."""
        y = self.injected(tile)
        n = self.n
        enabled = self.emu_checks and self.timing_en
        d = []
        for c in range(n):
            acc = tile.col_neg[c]
            for r in range(n):
                acc = timed_add(acc, y[r][c], self.slack[c], enabled)
            d.append(acc)
        e = [(sum(y[r]) + tile.row_neg[r]) & MASK32 for r in range(n)]
        return d, e

    def expected(self, tile: Tile) -> list[tuple[int, bool]]:
        """The tile's output beats: N rows, d, e, then ceil(16/N) statistics beats, tlast on the last."""
        n = self.n
        d, e = self.deviations(tile)
        words = tile.stats.words(tile.tag)
        beats_n = -(-STATS_WORDS // n)
        words += [0] * (beats_n * n - len(words))
        beats = [pack(row) for row in self.injected(tile)] + [pack(d), pack(e)]
        beats += [pack(words[i * n:(i + 1) * n]) for i in range(beats_n)]
        return [(b, tile.tlast and i == len(beats) - 1) for i, b in enumerate(beats)]

    def random_tile(self, tlast: bool, error_rate: float = 0.0) -> Tile:
        """Results of a real small GEMM with its exact negated references, then (maybe) errors in Y."""
        n = self.n
        rng = self.rng
        k = rng.randint(1, 6)
        kind = rng.random()
        pick = (lambda: rng.choice([-128, 127])) if kind < 0.2 else (lambda: rng.randint(-128, 127))
        x = [[pick() for _ in range(k)] for _ in range(n)]
        w = [[pick() for _ in range(n)] for _ in range(k)]
        y = [[sum(x[r][j] * w[j][c] for j in range(k)) & MASK32 for c in range(n)] for r in range(n)]
        col_neg = [-sum(x[r][j] * w[j][c] for r in range(n) for j in range(k)) & MASK32 for c in range(n)]
        row_neg = [-sum(x[r][j] * w[j][c] for c in range(n) for j in range(k)) & MASK32 for r in range(n)]
        for r in range(n):
            for c in range(n):
                if rng.random() < error_rate:
                    y[r][c] ^= 1 << rng.randrange(32)
        if rng.random() < 0.05:  # a wild row, the accumulators wrap
            y[rng.randrange(n)] = [rng.getrandbits(32) for _ in range(n)]
        return Tile(rng.getrandbits(16), tlast, y, col_neg, row_neg, random_stats(rng))

    async def run_tiles(self, tiles: list[Tile]):
        """Queue the tiles and check every output beat, frame boundaries and the bookkeeping."""
        first = len(self.tiles)
        for t in tiles:
            self.queue(t)
            # let some tiles be queued while others are under way
            gap = self.rng.choice([0, 0, 1, 5 * self.n])
            if gap:
                await ClockCycles(self.dut.clk, gap)
        want = [b for t in tiles for b in self.expected(t)]
        got = []
        while len(got) < len(want):
            frame = await self.sink.recv()
            data = bytes(frame.tdata)
            width = 4 * self.n
            assert len(data) % width == 0
            beats = [int.from_bytes(data[i:i + width], "little") for i in range(0, len(data), width)]
            got += [(b, i == len(beats) - 1) for i, b in enumerate(beats)]
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            if g != w:
                tile, beat = self.locate(tiles, i)
                raise AssertionError(f"tile {first + tile} beat {beat}: got {self.words(g[0])} tlast {g[1]}, "
                                     f"want {self.words(w[0])} tlast {w[1]}")
        await ClockCycles(self.dut.clk, 4)
        await ReadOnly()
        assert not self.dut.busy.value, "busy after the last tile"
        assert self.done_tiles == self.pops == self.stats_started == len(self.tiles)
        await RisingEdge(self.dut.clk)

    def locate(self, tiles: list[Tile], index: int) -> tuple[int, int]:
        per_tile = self.n + 2 + -(-STATS_WORDS // self.n)
        return index // per_tile, index % per_tile


def random_delays(seed: int, choices):
    rng = random.Random(seed)
    while True:
        yield rng.choice(choices)


@cocotb.test()
@cocotb.parametrize(idle_inserter=[None, cycle_pause, random_pause], backpressure_inserter=[None, cycle_pause])
async def run_test_tiles(dut, idle_inserter, backpressure_inserter):
    """Random tiles in transfers of 1 to 4, exact and with errors in Y, with late ref entries and
    statistics that take 0 to 3N cycles."""
    tb = TB(dut, seed=1)
    await tb.cycle_reset()
    tb.set_idle_generator(idle_inserter)
    tb.set_backpressure_generator(backpressure_inserter)
    n = tb.n
    tb.ref_delay = random_delays(2, [0, 0, 0, 3, 4 * n])
    tb.stats_delay = random_delays(3, [0, 1, 2, n + 5, 3 * n])
    tiles = []
    while len(tiles) < 40:
        size = tb.rng.randint(1, 4)
        rate = tb.rng.choice([0.0, 0.0, 0.05, 0.5])
        tiles += [tb.random_tile(i == size - 1, rate) for i in range(size)]
    await tb.run_tiles(tiles)
    exact = [t for t in tiles if tb.deviations(t) == ([0] * n, [0] * n)]
    assert 0 < len(exact) < len(tiles), "want both exact tiles (zero deviations) and erring ones"


@cocotb.test()
@cocotb.parametrize(backpressure_inserter=[None, random_pause])
async def run_test_injection(dut, backpressure_inserter):
    """INJ_TABLE masks XORed into Y before it is observed: always, or only for the tile whose tag
    matches; a build without INJECT ignores the controls."""
    tb = TB(dut, seed=4)
    await tb.cycle_reset()
    tb.set_backpressure_generator(backpressure_inserter)
    n = tb.n
    for match_tag in (False, True):
        masks = [[tb.rng.choice([0, 0, 1 << tb.rng.randrange(32), tb.rng.getrandbits(32)]) for _ in range(n)]
                 for _ in range(n)]
        tiles = [tb.random_tile(i == 3) for i in range(4)]
        tb.configure(inj=masks, inj_cfg=(True, match_tag, tiles[2].tag))
        await tb.run_tiles(tiles)
        hit = [t for t in tiles if tb.injected(t) != t.y]
        assert len(hit) == (0 if not tb.inject else 1 if match_tag else 4), f"{len(hit)} tiles injected"
    tb.configure(inj_cfg=(False, False, 0))
    await tb.run_tiles([tb.random_tile(True)])


@cocotb.test()
async def run_test_timing_emulation(dut):
    """timing_en with random slack for the d_c accumulators: EMU_CHECKS=1 follows the timing model
    (and must err somewhere), e stays exact; EMU_CHECKS=0 stays exact."""
    tb = TB(dut, seed=5)
    await tb.cycle_reset()
    n = tb.n
    slack = [tb.rng.choice([-1, 0, 1, 4, 9, 16, 25, 30, 31, 127]) for _ in range(n)]
    tb.configure(slack, timing_en=True)
    tb.stats_delay = random_delays(6, [0, n + 5])
    tiles = [tb.random_tile(i % 3 == 2, 0.2) for i in range(12)]
    await tb.run_tiles(tiles)
    tb.timing_en = False
    exact = [tb.deviations(t) for t in tiles]
    tb.timing_en = True
    timed = [tb.deviations(t) for t in tiles]
    assert (exact != timed) == tb.emu_checks, "the slack must provoke late bits in the EMU_CHECKS build"


@pytest.mark.rtl
@pytest.mark.parametrize(("n", "inject", "emu_checks"), [(4, 1, 1), (6, 0, 0)])
def test_realm_egress(n, inject, emu_checks):
    """N = 4 packs the statistics into four full beats; N = 6 into three with two zero words."""
    run(
        toplevel="realm_egress",
        sources=rtl_sources("realm_egress", "realm_timed_add"),
        test_module="test_realm_egress",
        test_dir=Path(__file__).parent,
        parameters={"N": n, "INJECT": inject, "EMU_CHECKS": emu_checks},
    )
