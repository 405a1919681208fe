"""realm_async_fifo: every word arrives once and in order, at any clock ratio and handshake pattern,
and full/empty are never optimistic and stay pessimistic no longer than the two-flop synchronizers."""

from __future__ import annotations

import itertools
import logging
import random
from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from cocotb_build import rtl_sources, run

# (wr_clk period, rd_clk period) in ns; 7.3 and 10 share no small common multiple, so the phase of
# one clock against the other walks through every offset
CLOCK_PAIRS = [(10, 10), (7, 13), (13, 7), (3, 20), (20, 3), (10, 7.3), (7.3, 10)]
UNRELATED_PAIRS = [(10, 7.3), (7.3, 10)]
# a synchronized pointer lags its domain by at most this many of the receiving clock's edges
SYNC_EDGES = 2


@dataclass
class Sample:
    """One clock edge of one side: its time, the flag before the edge, a completed handshake."""

    time: int
    flag: bool
    took: bool


def random_pause(rng: random.Random, p: float):
    while True:
        yield rng.random() < p


def phased_pause(rng: random.Random, probs=(0.0, 0.2, 0.6, 0.95), phase: int = 24):
    """Pause with a probability redrawn every `phase` cycles, so the FIFO runs full, empty and between."""
    while True:
        p = rng.choice(probs)
        for _ in range(phase):
            yield rng.random() < p


class TB:
    def __init__(self, dut, wr_period: float, rd_period: float, seed: int):
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        self.rng = random.Random(seed)
        self.width = len(dut.wr_data)
        self.depth = 1 << int(dut.DEPTH_LOG2.value)
        self.periods = (wr_period, rd_period)
        cocotb.start_soon(Clock(dut.wr_clk, wr_period, unit="ns").start())
        cocotb.start_soon(Clock(dut.rd_clk, rd_period, unit="ns").start())
        dut.wr_valid.value = 0
        dut.wr_data.value = 0
        dut.rd_ready.value = 0
        self.wr_log: list[Sample] = []
        self.rd_log: list[Sample] = []

    async def cycle_reset(self):
        dut = self.dut
        dut.wr_rst.value = 1
        dut.rd_rst.value = 1
        # both sides must see the reset for a few of their own cycles
        await ClockCycles(dut.wr_clk, 4)
        await ClockCycles(dut.rd_clk, 4)
        await RisingEdge(dut.wr_clk)
        dut.wr_rst.value = 0
        await RisingEdge(dut.rd_clk)
        dut.rd_rst.value = 0
        await ClockCycles(dut.wr_clk, 4)

    def start_monitors(self):
        """Record every edge of both clocks from now on (full = !wr_ready, empty = !rd_valid)."""
        dut = self.dut
        cocotb.start_soon(self._monitor(dut.wr_clk, dut.wr_valid, dut.wr_ready, dut.wr_ready, self.wr_log))
        cocotb.start_soon(self._monitor(dut.rd_clk, dut.rd_valid, dut.rd_ready, dut.rd_valid, self.rd_log))

    @staticmethod
    async def _monitor(clk, valid, ready, not_flag, log: list[Sample]):
        while True:
            # full and empty only change on their own clock's edge, so this is the value the edge sees
            await ReadOnly()
            flag = not not_flag.value
            took = bool(valid.value) and bool(ready.value)
            await RisingEdge(clk)
            log.append(Sample(int(get_sim_time("ps")), flag, took))

    async def write(self, words: list[int], idle):
        dut = self.dut
        i = 0
        while i < len(words):
            valid = not next(idle)
            dut.wr_valid.value = int(valid)
            dut.wr_data.value = words[i]
            await ReadOnly()
            ready = bool(dut.wr_ready.value)
            await RisingEdge(dut.wr_clk)
            if valid and ready:
                i += 1
        dut.wr_valid.value = 0

    async def read(self, count: int, stall, timeout_cycles: int) -> list[int]:
        dut = self.dut
        got: list[int] = []
        for _ in range(timeout_cycles):
            if len(got) == count:
                break
            ready = not next(stall)
            dut.rd_ready.value = int(ready)
            await ReadOnly()
            valid = bool(dut.rd_valid.value)
            data = int(dut.rd_data.value) if valid else None
            await RisingEdge(dut.rd_clk)
            if valid and ready:
                got.append(data)
        dut.rd_ready.value = 0
        return got

    def check_flags(self) -> dict:
        """Full and empty against the true occupancy, from the handshake times of both sides.

        Safety: full whenever the FIFO really holds DEPTH words, empty whenever it holds none.
        Bounded pessimism: full only if no read completed before the edge SYNC_EDGES write
        edges earlier could have freed a slot, empty only if no write completed before the
        edge SYNC_EDGES read edges earlier. Returns how often each flag was up.
        """
        writes = [s.time for s in self.wr_log if s.took]
        reads = [s.time for s in self.rd_log if s.took]

        def written(t):  # handshakes strictly before time t
            return bisect_left(writes, t)

        def read(t):
            return bisect_left(reads, t)

        seen = {"full": 0, "full_pessimistic": 0, "empty": 0, "empty_pessimistic": 0}
        for j, s in enumerate(self.wr_log):
            held = written(s.time) - read(s.time)
            assert 0 <= held <= self.depth, f"wr edge at {s.time} ps: {held} words held"
            if s.flag:
                seen["full"] += 1
                seen["full_pessimistic"] += held < self.depth
                if j >= SYNC_EDGES:
                    old = self.wr_log[j - SYNC_EDGES].time
                    assert written(s.time) - read(old) >= self.depth, (
                        f"full at {s.time} ps although a read before {old} ps freed a slot")
            else:
                assert held < self.depth, f"not full at {s.time} ps with {held} words held"
        for i, s in enumerate(self.rd_log):
            held = written(s.time) - read(s.time)
            if s.flag:
                seen["empty"] += 1
                seen["empty_pessimistic"] += held > 0
                if i >= SYNC_EDGES:
                    old = self.rd_log[i - SYNC_EDGES].time
                    assert written(old) - read(s.time) <= 0, (
                        f"empty at {s.time} ps although a write before {old} ps was not read")
            else:
                assert held > 0, f"rd_valid at {s.time} ps with nothing held"
        return seen


def never():
    return itertools.repeat(False)


@cocotb.test()
@cocotb.parametrize(clocks=CLOCK_PAIRS, pattern=[(0.0, 0.0), (0.5, 0.0), (0.0, 0.6), (0.4, 0.4)])
async def run_test_stream(dut, clocks, pattern):
    """Random data under random idles/stalls: no loss, duplication or reordering."""
    seed = CLOCK_PAIRS.index(clocks) * 10 + int(10 * pattern[0]) + int(10 * pattern[1])
    tb = TB(dut, *clocks, seed=seed)
    await tb.cycle_reset()
    idle_prob, stall_prob = pattern
    words = [tb.rng.getrandbits(tb.width) for _ in range(300)]
    writer = cocotb.start_soon(tb.write(words, random_pause(random.Random(seed + 1), idle_prob)))
    slow = int(max(clocks) // min(clocks)) + 1
    got = await tb.read(len(words), random_pause(random.Random(seed + 2), stall_prob),
                        timeout_cycles=40 * len(words) * slow)
    await writer
    assert got == words


@cocotb.test()
@cocotb.parametrize(clocks=UNRELATED_PAIRS)
async def run_test_unrelated_clocks(dut, clocks):
    """Clocks of unrelated periods, random write idles and read back-pressure in phases that fill
    and empty the FIFO: order kept, nothing lost or duplicated, and full/empty checked at every edge."""
    seed = UNRELATED_PAIRS.index(clocks)
    tb = TB(dut, *clocks, seed=seed)
    await tb.cycle_reset()
    tb.start_monitors()
    words = [tb.rng.getrandbits(tb.width) for _ in range(1500)]
    writer = cocotb.start_soon(tb.write(words, phased_pause(random.Random(100 + seed))))
    slow = int(max(clocks) // min(clocks)) + 1
    got = await tb.read(len(words), phased_pause(random.Random(200 + seed)),
                        timeout_cycles=40 * len(words) * slow)
    await writer
    assert len(got) == len(words), f"{len(got)} of {len(words)} words arrived"
    wrong = [i for i, (a, b) in enumerate(zip(got, words, strict=True)) if a != b]
    assert not wrong, f"{len(wrong)} words differ, the first at {wrong[:1]}"
    seen = tb.check_flags()
    tb.log.info("clocks %s ns: flag samples %s", clocks, seen)
    # the phases must have driven the FIFO both to full and to empty, or the flag checks proved little
    assert seen["full"] > 0 and seen["empty"] > 0, seen


@cocotb.test()
@cocotb.parametrize(clocks=CLOCK_PAIRS)
async def run_test_fill_then_drain(dut, clocks):
    """With the reader stopped the FIFO takes exactly DEPTH words, then gives them all back."""
    tb = TB(dut, *clocks, seed=CLOCK_PAIRS.index(clocks))
    await tb.cycle_reset()
    tb.start_monitors()
    words = [tb.rng.getrandbits(tb.width) for _ in range(tb.depth + 3)]
    writer = cocotb.start_soon(tb.write(words, never()))
    await ClockCycles(dut.wr_clk, 4 * tb.depth + 20)
    await ClockCycles(dut.rd_clk, 8)
    await ReadOnly()
    assert not dut.wr_ready.value, "FIFO must report full after DEPTH writes"
    assert dut.rd_valid.value
    await RisingEdge(dut.rd_clk)
    got = await tb.read(len(words), never(), timeout_cycles=100 * len(words))
    await writer
    assert got == words
    await ClockCycles(dut.rd_clk, 4)
    await ReadOnly()
    assert not dut.rd_valid.value, "FIFO must report empty once every word is read"
    await RisingEdge(dut.rd_clk)
    seen = tb.check_flags()
    assert seen["full"] > 0 and seen["empty"] > 0, seen


@pytest.mark.rtl
@pytest.mark.parametrize(("width", "depth_log2"), [(8, 4), (33, 2)])
def test_realm_async_fifo(width, depth_log2):
    run(
        toplevel="realm_async_fifo",
        sources=rtl_sources("realm_async_fifo"),
        test_module="test_realm_async_fifo",
        test_dir=Path(__file__).parent,
        parameters={"WIDTH": width, "DEPTH_LOG2": depth_log2},
    )
