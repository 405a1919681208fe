"""realm_feeder: row r of X and column c of W leave r + 1 and c + 1 cycles after their pop, the
valid/first/last tag travels with x, and only a tile's last beat waits, exactly while the previous
tile is not drained."""

from __future__ import annotations

import itertools
import logging
import random
from dataclasses import dataclass
from pathlib import Path

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from cocotb_build import rtl_sources, run


def cycle_pause():
    return itertools.cycle([1, 1, 1, 0])


def random_pause(seed: int = 1, p: float = 0.4):
    rng = random.Random(seed)
    while True:
        yield int(rng.random() < p)


@dataclass(frozen=True)
class Beat:
    x: tuple[int, ...]  # X[r, k], r = 0..N-1, unsigned bytes
    w: tuple[int, ...]  # W[k, c], c = 0..N-1
    first: bool
    last: bool

    def word(self, n: int) -> int:
        """op_data = {last, first, beat}: byte r of beat[8N-1:0] is X[r,k], byte c of the top half W[k,c]."""
        value = int(self.last) << (16 * n + 1) | int(self.first) << (16 * n)
        for i, b in enumerate(self.x + self.w):
            value |= b << (8 * i)
        return value


def byte(value: int, i: int) -> int:
    return (value >> (8 * i)) & 0xFF


class TB:
    def __init__(self, dut, seed: int):
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        self.n = int(dut.N.value)
        self.rng = random.Random(seed)
        self.idle = itertools.repeat(0)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        dut.op_valid.value = 0
        dut.op_data.value = 0
        dut.tile_drained.value = 0

    def set_idle_generator(self, generator=None):
        if generator:
            self.idle = generator()

    async def cycle_reset(self):
        dut = self.dut
        dut.rst.value = 1
        await ClockCycles(dut.clk, 3)
        await ReadOnly()
        assert not dut.op_ready.value, "no pop during reset"
        await RisingEdge(dut.clk)
        dut.rst.value = 0
        await ReadOnly()
        assert int(dut.valid_rows.value) == 0, "valid tags left after reset"
        await RisingEdge(dut.clk)

    def tile(self, k: int) -> list[Beat]:
        n = self.n
        return [Beat(tuple(self.rng.getrandbits(8) for _ in range(n)), tuple(self.rng.getrandbits(8) for _ in range(n)),
                     i == 0, i == k - 1) for i in range(k)]

    async def run(self, tiles: list[list[Beat]], drain_delay, limit: int = 100_000) -> dict:
        """Feed the beats as a FIFO would (a presented beat stays until popped; the idle generator
        only delays the next one) and pulse tile_drained `next(drain_delay)` cycles after a tile's
        last beat is popped. Checks op_ready, busy and every output against the pops, cycle by cycle."""
        dut = self.dut
        n = self.n
        beats = [b for t in tiles for b in t]
        pops: dict[int, Beat] = {}  # cycle of the pop -> beat
        i = 0
        presented = False
        pending = False  # a tile's last beat was popped and it is not drained yet
        in_tile = False
        drain_at = None
        stalls = 0
        cycle = 0
        quiet = 0
        while i < len(beats) or pending or quiet < n + 2:
            assert cycle < limit, f"stuck at beat {i} of {len(beats)}"
            if not presented and i < len(beats) and not next(self.idle):
                presented = True
            if presented:
                dut.op_data.value = beats[i].word(n)
                last = beats[i].last
            else:
                # not valid: whatever the data, the tag alone must mark validity
                garbage = self.rng.getrandbits(16 * n + 2)
                dut.op_data.value = garbage
                last = bool(garbage >> (16 * n + 1))
            dut.op_valid.value = int(presented)
            drained = drain_at == cycle
            dut.tile_drained.value = int(drained)
            await ReadOnly()
            ready = bool(dut.op_ready.value)
            assert ready == (not (pending and last)), (
                f"cycle {cycle}: op_ready={ready} with pending={pending}, last={last}")
            assert bool(dut.busy.value) == (pending or in_tile), (
                f"cycle {cycle}: busy={dut.busy.value} with pending={pending}, in_tile={in_tile}")
            self.check_outputs(cycle, pops)
            await RisingEdge(dut.clk)
            if presented and ready:
                beat = beats[i]
                pops[cycle] = beat
                in_tile = not beat.last
                if beat.last:
                    pending = True
                    drain_at = cycle + 1 + next(drain_delay)
                i += 1
                presented = False
            elif presented:
                stalls += 1
            if drained:
                pending = False
                drain_at = None
            quiet = quiet + 1 if i == len(beats) else 0
            cycle += 1
        dut.op_valid.value = 0
        return {"pops": sorted(pops), "stalls": stalls, "cycles": cycle}

    def check_outputs(self, cycle: int, pops: dict[int, Beat]):
        """Row r shows the beat popped r + 1 cycles ago with its tag; column c the W of the beat popped c + 1 ago."""
        dut = self.dut
        valid = int(dut.valid_rows.value)
        first = int(dut.first_rows.value)
        last = int(dut.last_rows.value)
        x = int(dut.x_rows.value)
        w = int(dut.w_cols.value)
        for r in range(self.n):
            beat = pops.get(cycle - 1 - r)
            assert bool(valid >> r & 1) == (beat is not None), f"cycle {cycle}: valid_rows[{r}]"
            if beat is None:
                continue
            assert bool(first >> r & 1) == beat.first, f"cycle {cycle}: first_rows[{r}]"
            assert bool(last >> r & 1) == beat.last, f"cycle {cycle}: last_rows[{r}]"
            assert byte(x, r) == beat.x[r], f"cycle {cycle}: x_rows[{r}] = {byte(x, r)}, want {beat.x[r]}"
        for c in range(self.n):
            beat = pops.get(cycle - 1 - c)
            if beat is not None:
                assert byte(w, c) == beat.w[c], f"cycle {cycle}: w_cols[{c}] = {byte(w, c)}, want {beat.w[c]}"


def random_delays(seed: int, high: int):
    rng = random.Random(seed)
    while True:
        yield rng.choice([0, 0, rng.randrange(high)])


@cocotb.test()
@cocotb.parametrize(idle_inserter=[None, cycle_pause, random_pause])
async def run_test_skew(dut, idle_inserter):
    """Tiles of K = 1 to 3N with random drain delays: skewed operands and tags, hazard stalls only."""
    tb = TB(dut, seed=1)
    await tb.cycle_reset()
    tb.set_idle_generator(idle_inserter)
    n = tb.n
    ks = [1, 1, 2, 3, 2 * n, 2 * n + 2, 3 * n] + [tb.rng.randint(1, 3 * n) for _ in range(30)]
    await tb.run([tb.tile(k) for k in ks], random_delays(2, 3 * n))


@cocotb.test()
async def run_test_back_to_back(dut):
    """With no idles and each tile drained in the cycle after its last pop (the drain's earliest),
    beats pop one per cycle; only a K = 1 tile right behind another waits, one cycle."""
    tb = TB(dut, seed=3)
    await tb.cycle_reset()
    ks = [2, 5, 1, 1, 7, 3, 1]
    out = await tb.run([tb.tile(k) for k in ks], itertools.repeat(0))
    pops = out["pops"]
    assert out["stalls"] == ks[1:].count(1), out
    assert pops[-1] - pops[0] + 1 == sum(ks) + out["stalls"], pops


@pytest.mark.rtl
@pytest.mark.parametrize("n", [4, 8])
def test_realm_feeder(n):
    run(
        toplevel="realm_feeder",
        sources=rtl_sources("realm_feeder"),
        test_module="test_realm_feeder",
        test_dir=Path(__file__).parent,
        parameters={"N": n},
    )
