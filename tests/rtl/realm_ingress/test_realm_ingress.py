"""realm_ingress: header parsing, magic and K checks with FRAMING_ERR and drop-to-tlast, operand
beats tagged first/last into the operand FIFO, one ref-queue entry per tile whose negated reference
checksums -r_c and -q_r are recomputed here from the operands (through the timing model when the
checksum accumulators emulate it), and the credit limit of the ref queue."""

from __future__ import annotations

import itertools
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSource

from cocotb_build import rtl_sources, run

MAGIC = 0x7EA1  # rtl/README.md, "Stream framing"
MASK32 = 0xFFFFFFFF


def cycle_pause():
    return itertools.cycle([1, 1, 1, 0])


def random_pause(seed: int = 1, p: float = 0.4):
    rng = random.Random(seed)
    while True:
        yield int(rng.random() < p)


def signed8(v: int) -> int:
    return v - 256 if v & 0x80 else v


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


@dataclass
class Tile:
    tag: int
    x: list[list[int]]  # x[k][r] = X[r, k], signed
    w: list[list[int]]  # w[k][c] = W[k, c], signed

    @property
    def k(self) -> int:
        return len(self.x)

    def header(self, n: int, k: int | None = None, magic: int = MAGIC) -> int:
        return magic | self.tag << 16 | (self.k if k is None else k) << 32

    def beats(self, n: int) -> list[int]:
        out = []
        for xk, wk in zip(self.x, self.w, strict=True):
            value = 0
            for i, v in enumerate(xk + wk):
                value |= (v & 0xFF) << (8 * i)
            out.append(value)
        return out

    def negated_refs(self, n: int, slack: list[int], enabled: bool) -> tuple[list[int], list[int]]:
        """(-r_c for each c, -q_r for each r) as the ingress accumulates them, one term per beat."""
        col = [0] * n
        row = [0] * n
        for k in range(self.k):
            xsum = sum(self.x[k])
            wsum = sum(self.w[k])
            for i in range(n):
                base_c = 0 if k == 0 else col[i]
                base_r = 0 if k == 0 else row[i]
                col[i] = timed_add(base_c, (-xsum * self.w[k][i]) & MASK32, slack[i], enabled)
                row[i] = timed_add(base_r, (-wsum * self.x[k][i]) & MASK32, slack[n + i], enabled)
        return col, row


@dataclass
class Expected:
    ops: list[int] = field(default_factory=list)
    refs: list[int] = field(default_factory=list)
    framing_errors: int = 0
    tiles: int = 0


class Model:
    """The parser of rtl/README.md over a sequence of (beat, tlast): headers, operand beats,
    drop to tlast after a bad header."""

    def __init__(self, n: int, slack: list[int], enabled: bool):
        self.n = n
        self.slack = slack
        self.enabled = enabled

    def expected(self, beats: list[tuple[int, bool]], tiles: dict[int, Tile]) -> Expected:
        n = self.n
        out = Expected()
        i = 0
        while i < len(beats):
            value, tlast = beats[i]
            magic = value & 0xFFFF
            tag = value >> 16 & 0xFFFF
            k = value >> 32 & MASK32
            i += 1
            if magic != MAGIC or k == 0:
                out.framing_errors += 1
                if not tlast:
                    while not beats[i][1]:
                        i += 1
                    i += 1
                continue
            ops = beats[i:i + k]
            assert len(ops) == k, "test stream ends inside a tile"
            i += k
            tile_tlast = tlast or any(t for _, t in ops)
            for j, (v, _) in enumerate(ops):
                out.ops.append(int(j == k - 1) << (16 * n + 1) | int(j == 0) << (16 * n) | v)
            col, row = tiles[tag].negated_refs(n, self.slack, self.enabled)
            ref = tag << (64 * n + 1) | int(tile_tlast) << (64 * n)
            for c in range(n):
                ref |= col[c] << (32 * c) | row[c] << (32 * (n + c))
            out.refs.append(ref)
            out.tiles += 1
        return out


class TB:
    def __init__(self, dut, seed: int):
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        self.n = int(dut.N.value)
        self.ref_depth = int(dut.REF_DEPTH.value)
        self.emu_checks = bool(int(dut.EMU_CHECKS.value))
        self.rng = random.Random(seed)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
        logging.getLogger(f"cocotb.{dut._name}.s_axis").setLevel(logging.WARNING)
        self.backpressure = itertools.repeat(0)
        self.release_delay = itertools.repeat(0)
        self.hold_releases = False
        self.slack = [31] * (2 * self.n)
        self.timing_en = False
        dut.op_ready.value = 0
        dut.ref_release.value = 0
        dut.timing_en.value = 0
        dut.ck_slack.value = 0
        self.next_tag = 0
        self.tiles: dict[int, Tile] = {}
        self.sent: list[tuple[int, bool]] = []
        self.log_reset()

    def log_reset(self):
        self.ops: list[int] = []
        self.refs: list[int] = []
        self.accepted: list[tuple[int, int, bool]] = []  # s_axis handshakes: (cycle, tdata, tlast)
        self.releases: list[int] = []  # cycles
        self.errors = 0
        self.busy: list[int] = []
        self.to_release: list[int] = []  # due cycles

    def set_idle_generator(self, generator=None):
        if generator:
            self.source.set_pause_generator(generator())

    def set_backpressure_generator(self, generator=None):
        if generator:
            self.backpressure = generator()

    def configure(self, slack: list[int], timing_en: bool):
        """ck_slack (byte c: -r_c, byte N + r: -q_r) and timing_en; quasi-static, only while idle."""
        self.slack = slack
        self.timing_en = timing_en
        self.dut.ck_slack.value = sum((s & 0xFF) << (8 * i) for i, s in enumerate(slack))
        self.dut.timing_en.value = int(timing_en)

    async def cycle_reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        cocotb.start_soon(self._datapath())

    async def _datapath(self):
        """Operand FIFO (op_ready with back-pressure), ref queue and egress (a release per entry,
        `next(release_delay)` cycles after it arrived, in order), and the per-cycle record."""
        dut = self.dut
        cycle = 0
        while True:
            op_ready = not next(self.backpressure)
            release = bool(self.to_release) and self.to_release[0] <= cycle and not self.hold_releases
            dut.op_ready.value = int(op_ready)
            dut.ref_release.value = int(release)
            await ReadOnly()
            if dut.op_valid.value and op_ready:
                self.ops.append(int(dut.op_data.value))
            if dut.s_axis_tvalid.value and dut.s_axis_tready.value:
                self.accepted.append((cycle, int(dut.s_axis_tdata.value), bool(dut.s_axis_tlast.value)))
            if dut.ref_valid.value:
                self.refs.append(int(dut.ref_data.value))
                # the queue shows it from the next cycle on
                self.to_release.append(cycle + 1 + next(self.release_delay))
            if release:
                self.to_release.pop(0)
                self.releases.append(cycle)
            self.errors += int(dut.framing_err.value)
            self.busy.append(int(dut.busy.value))
            await RisingEdge(dut.clk)
            cycle += 1

    def random_tile(self, k: int, kind: str | None = None) -> Tile:
        n = self.n
        kind = kind or self.rng.choice(["random", "random", "extreme", "sparse"])
        if kind == "extreme":
            values = [-128, 127, -1, 0]
        elif kind == "sparse":
            values = [0] * 6 + [-128, 127, 1, -1]
        else:
            values = list(range(-128, 128))
        tag = self.next_tag
        self.next_tag = (self.next_tag + 1) & 0xFFFF
        tile = Tile(tag, [[self.rng.choice(values) for _ in range(n)] for _ in range(k)],
                    [[self.rng.choice(values) for _ in range(n)] for _ in range(k)])
        self.tiles[tag] = tile
        return tile

    def random_k(self) -> int:
        n = self.n
        return self.rng.choice([1, 1, 2, 3, n, 2 * n + 1, self.rng.randint(1, 3 * n), self.rng.randint(1, 80)])

    def transfer(self, tiles: list[Tile]) -> list[tuple[int, bool]]:
        beats = []
        for t in tiles:
            beats.append(t.header(self.n))
            beats += t.beats(self.n)
        return [(b, i == len(beats) - 1) for i, b in enumerate(beats)]

    def bad_transfer(self) -> list[tuple[int, bool]]:
        """A bad header (wrong magic or K = 0), then junk including a valid-looking tile, all
        dropped up to its tlast; sometimes the bad header carries the tlast itself."""
        n = self.n
        junk_tile = Tile(0xDEAD, [[1] * n], [[1] * n])
        if self.rng.random() < 0.5:
            header = junk_tile.header(n, magic=self.rng.choice([0, 0x7EA0, 0xFFFF, MAGIC ^ 0x100]))
        else:
            header = junk_tile.header(n, k=0)
        if self.rng.random() < 0.25:
            return [(header, True)]
        junk = [self.rng.getrandbits(16 * n) for _ in range(self.rng.randrange(4))]
        junk += [junk_tile.header(n)] + junk_tile.beats(n)
        beats = [header] + junk
        return [(b, i == len(beats) - 1) for i, b in enumerate(beats)]

    async def send(self, beats: list[tuple[int, bool]]):
        """Queue beats as AXI-Stream frames (one per tlast)."""
        self.sent += beats
        frame = []
        for value, tlast in beats:
            frame.append(value.to_bytes(2 * self.n, "little"))
            if tlast:
                await self.source.send(AxiStreamFrame(b"".join(frame)))
                frame = []
        assert not frame, "the last beat must carry tlast"

    async def finish(self, timeout: int = 200_000):
        """Wait until every expected tile has been released and the ingress is idle, then check."""
        dut = self.dut
        # without EMU_CHECKS the build has plain adders whatever timing_en says
        want = Model(self.n, self.slack, self.timing_en and self.emu_checks).expected(self.sent, self.tiles)
        for _ in range(timeout):
            await RisingEdge(dut.clk)
            if (self.source.empty() and len(self.releases) >= want.tiles and not dut.busy.value
                    and len(self.accepted) == len(self.sent)):
                break
        else:
            raise AssertionError(f"{len(self.releases)} of {want.tiles} tiles released, "
                                 f"{len(self.accepted)} of {len(self.sent)} beats accepted")
        await ClockCycles(dut.clk, 5)
        assert [(d, t) for _, d, t in self.accepted] == self.sent
        assert self.errors == want.framing_errors, f"{self.errors} framing errors, want {want.framing_errors}"
        assert len(self.ops) == len(want.ops), f"{len(self.ops)} operand beats, want {len(want.ops)}"
        for i, (got, exp) in enumerate(zip(self.ops, want.ops, strict=True)):
            assert got == exp, f"operand beat {i}: 0x{got:x}, want 0x{exp:x}"
        assert len(self.refs) == want.tiles, f"{len(self.refs)} ref entries, want {want.tiles}"
        for i, (got, exp) in enumerate(zip(self.refs, want.refs, strict=True)):
            if got != exp:
                raise AssertionError(f"ref entry {i}:\n{self.describe_ref(got)}\nwant\n{self.describe_ref(exp)}")
        self.check_credits()
        return want

    def describe_ref(self, ref: int) -> str:
        n = self.n
        words = [ref >> (32 * i) & MASK32 for i in range(2 * n)]
        return (f"  tag 0x{ref >> (64 * n + 1):04x} tlast {ref >> (64 * n) & 1}\n"
                f"  -r_c {[f'{w:08x}' for w in words[:n]]}\n  -q_r {[f'{w:08x}' for w in words[n:]]}")

    def check_credits(self) -> int:
        """Never more than REF_DEPTH tiles between header and release; busy while any is.
        Returns the most tiles outstanding at once."""
        headers = []
        i = 0
        beats = [(d, t) for _, d, t in self.accepted]
        while i < len(beats):
            # replay the parser: each step starts at a header
            value = beats[i][0]
            if value & 0xFFFF == MAGIC and value >> 32 & MASK32:
                headers.append(self.accepted[i][0])
                i += 1 + (value >> 32 & MASK32)
            else:
                while not beats[i][1]:
                    i += 1
                i += 1
        events = sorted([(c, 1) for c in headers] + [(c, -1) for c in self.releases])
        outstanding = 0
        most = 0
        for cycle, step in events:
            outstanding += step
            most = max(most, outstanding)
            assert outstanding <= self.ref_depth, f"cycle {cycle}: {outstanding} tiles hold ref-queue slots"
        for c in headers:
            assert self.busy[c + 1], f"cycle {c + 1}: not busy right after a header"
        return most


def random_delays(seed: int, high: int):
    rng = random.Random(seed)
    while True:
        yield rng.choice([0, 0, 1, rng.randrange(high)])


@cocotb.test()
@cocotb.parametrize(idle_inserter=[None, cycle_pause], backpressure_inserter=[None, cycle_pause, random_pause])
async def run_test_stream(dut, idle_inserter, backpressure_inserter):
    """Random transfers of random tiles with bad transfers mixed in: operand beats, ref entries,
    framing errors, credits, under input idles, operand back-pressure and late releases."""
    tb = TB(dut, seed=1)
    await tb.cycle_reset()
    tb.set_idle_generator(idle_inserter)
    tb.set_backpressure_generator(backpressure_inserter)
    tb.release_delay = random_delays(2, 4 * tb.n)
    for _ in range(40):
        if tb.rng.random() < 0.2:
            await tb.send(tb.bad_transfer())
        else:
            await tb.send(tb.transfer([tb.random_tile(tb.random_k()) for _ in range(tb.rng.randint(1, 4))]))
    want = await tb.finish()
    assert want.framing_errors > 0 and want.tiles > 60


@cocotb.test()
async def run_test_credits(dut):
    """With the egress holding every entry, exactly REF_DEPTH headers are taken; the next waits
    (s_axis_tready low) until a release, then the stream completes."""
    tb = TB(dut, seed=3)
    await tb.cycle_reset()
    tb.hold_releases = True
    tiles = [tb.random_tile(tb.rng.randint(1, 5)) for _ in range(tb.ref_depth + 3)]
    await tb.send(tb.transfer(tiles))
    await ClockCycles(dut.clk, 40 * len(tiles))
    assert len(tb.refs) == tb.ref_depth, f"{len(tb.refs)} tiles through with {tb.ref_depth} credits"
    await ReadOnly()
    assert dut.s_axis_tvalid.value and not dut.s_axis_tready.value, "the next header must wait for a credit"
    assert dut.busy.value
    await RisingEdge(dut.clk)
    tb.hold_releases = False
    await tb.finish()
    assert tb.check_credits() == tb.ref_depth


@cocotb.test(timeout_time=500, timeout_unit="ms")
async def run_test_wrap(dut):
    """Checksums of a tile long enough that -r_c and -q_r wrap 32 bits (all operands -128)."""
    tb = TB(dut, seed=4)
    await tb.cycle_reset()
    n = tb.n
    k = (1 << 31) // (128 * 128 * n) + 50
    tile = Tile(0x77, [[-128] * n] * k, [[-128] * n] * k)
    tb.tiles[tile.tag] = tile
    col, _ = tile.negated_refs(n, [31] * (2 * n), False)
    assert 128 * n * 128 * k >= 1 << 31 and col[0] == (-(128 * n * 128 * k)) & MASK32
    await tb.send(tb.transfer([tile, tb.random_tile(3)]))
    await tb.finish()


@cocotb.test()
async def run_test_timing_emulation(dut):
    """timing_en with random checksum slack: EMU_CHECKS=1 follows the timing model (and must err
    somewhere); EMU_CHECKS=0 stays exact."""
    tb = TB(dut, seed=5)
    await tb.cycle_reset()
    n = tb.n
    slack = [tb.rng.choice([-128, -1, 0, 1, 5, 12, 18, 24, 30, 31, 32, 127]) for _ in range(2 * n)]
    tb.configure(slack, True)
    tb.set_backpressure_generator(random_pause)
    tb.release_delay = random_delays(6, 3 * n)
    tiles = [tb.random_tile(tb.rng.randint(n, 6 * n), "random") for _ in range(12)]
    await tb.send(tb.transfer(tiles[:6]))
    await tb.send(tb.transfer(tiles[6:]))
    await tb.finish()
    exact = Model(n, slack, False).expected(tb.sent, tb.tiles).refs
    timed = Model(n, slack, tb.emu_checks).expected(tb.sent, tb.tiles).refs
    assert (exact != timed) == tb.emu_checks, "the slack must provoke late bits in the EMU_CHECKS build"


@pytest.mark.rtl
@pytest.mark.parametrize(("n", "ref_depth", "emu_checks"), [(4, 2, 1), (8, 8, 0)])
def test_realm_ingress(n, ref_depth, emu_checks):
    run(
        toplevel="realm_ingress",
        sources=rtl_sources("realm_ingress", "realm_timed_add"),
        test_module="test_realm_ingress",
        test_dir=Path(__file__).parent,
        parameters={"N": n, "REF_DEPTH": ref_depth, "EMU_CHECKS": emu_checks},
    )
