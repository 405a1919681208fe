"""realm_async_fifo: every word arrives once and in order, at any clock ratio and handshake pattern."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from cocotb_build import rtl_sources, run

CLOCK_PAIRS = [(10, 10), (7, 13), (13, 7), (3, 20), (20, 3)]


class TB:
    def __init__(self, dut, wr_period: int, rd_period: int):
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        self.width = len(dut.wr_data)
        self.depth = 1 << int(dut.DEPTH_LOG2.value)
        cocotb.start_soon(Clock(dut.wr_clk, wr_period, unit="ns").start())
        cocotb.start_soon(Clock(dut.rd_clk, rd_period, unit="ns").start())
        dut.wr_valid.value = 0
        dut.wr_data.value = 0
        dut.rd_ready.value = 0

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

    async def write(self, words: list[int], idle_prob: float):
        dut = self.dut
        i = 0
        while i < len(words):
            valid = random.random() >= idle_prob
            dut.wr_valid.value = int(valid)
            dut.wr_data.value = words[i]
            await ReadOnly()
            ready = bool(dut.wr_ready.value)
            await RisingEdge(dut.wr_clk)
            if valid and ready:
                i += 1
        dut.wr_valid.value = 0

    async def read(self, count: int, stall_prob: float, timeout_cycles: int) -> list[int]:
        dut = self.dut
        got: list[int] = []
        for _ in range(timeout_cycles):
            if len(got) == count:
                break
            ready = random.random() >= stall_prob
            dut.rd_ready.value = int(ready)
            await ReadOnly()
            valid = bool(dut.rd_valid.value)
            data = int(dut.rd_data.value) if valid else None
            await RisingEdge(dut.rd_clk)
            if valid and ready:
                got.append(data)
        dut.rd_ready.value = 0
        return got


@cocotb.test()
@cocotb.parametrize(clocks=CLOCK_PAIRS, pattern=[(0.0, 0.0), (0.5, 0.0), (0.0, 0.6), (0.4, 0.4)])
async def run_test_stream(dut, clocks, pattern):
    """Random data under random idles/stalls: no loss, duplication or reordering."""
    tb = TB(dut, *clocks)
    await tb.cycle_reset()
    idle_prob, stall_prob = pattern
    words = [random.getrandbits(tb.width) for _ in range(300)]
    writer = cocotb.start_soon(tb.write(words, idle_prob))
    slow = max(clocks) // min(clocks) + 1
    got = await tb.read(len(words), stall_prob, timeout_cycles=40 * len(words) * slow)
    await writer
    assert got == words


@cocotb.test()
@cocotb.parametrize(clocks=CLOCK_PAIRS)
async def run_test_fill_then_drain(dut, clocks):
    """With the reader stopped the FIFO takes exactly DEPTH words, then gives them all back."""
    tb = TB(dut, *clocks)
    await tb.cycle_reset()
    words = [random.getrandbits(tb.width) for _ in range(tb.depth + 3)]
    writer = cocotb.start_soon(tb.write(words, 0.0))
    await ClockCycles(dut.wr_clk, 4 * tb.depth + 20)
    await ClockCycles(dut.rd_clk, 8)
    await ReadOnly()
    assert not dut.wr_ready.value, "FIFO must report full after DEPTH writes"
    assert dut.rd_valid.value
    await RisingEdge(dut.rd_clk)
    got = await tb.read(len(words), 0.0, timeout_cycles=100 * len(words))
    await writer
    assert got == words


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
