"""realm_pe: the timed accumulator update matches timed_add bit for bit; tags and operands move on."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import cocotb
import numpy as np
import pytest
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from cocotb_build import rtl_sources, run
from realm_hil.timing.emulation import timed_add, timed_dot

# every class of L the PE decodes: all late, each run length, the exact boundary and beyond
SLACKS = [-128, -2, -1, *range(0, 33), 100, 127]
# (a, x, w) with long carry/borrow chains, mostly through the sign bits
EDGE_CASES = [
    (-1, 1, 1),
    (-16384, -128, -128),
    (-1, -128, -128),
    (-2, 1, 1),
    (0x7FFFFFFF, 1, 1),
    (-(2**31), -1, 1),
    (-(2**31), 1, 1),
    (0x0000FFFF, 1, 1),
    (0x00FFFFFF, 127, 127),
    (-5, 2, 5),
    (-16129, 127, 127),
    (12345, -128, 127),
    (0, -128, -128),
    (0, 0, 0),
]


def s32(v: int) -> int:
    return (v + 2**31) % 2**32 - 2**31


class TB:
    def __init__(self, dut):
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        self.timing_emu = int(dut.TIMING_EMU.value)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        for name in ("x_in", "w_in", "valid_in", "first_in", "last_in", "timing_en", "slack"):
            getattr(dut, name).value = 0

    async def cycle_reset(self):
        self.dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    def drive(self, x: int, w: int, valid: bool, first: bool, last: bool):
        dut = self.dut
        dut.x_in.value = x & 0xFF
        dut.w_in.value = w & 0xFF
        dut.valid_in.value = int(valid)
        dut.first_in.value = int(first)
        dut.last_in.value = int(last)

    async def timed_step(self, a: int, x: int, w: int, slack: int) -> int:
        """One valid, last beat on an accumulator forced to a; returns the captured result."""
        await FallingEdge(self.dut.clk)
        self.dut.acc.value = a & 0xFFFFFFFF
        self.dut.slack.value = slack & 0xFF
        self.drive(x, w, valid=True, first=False, last=True)
        await RisingEdge(self.dut.clk)
        await ReadOnly()
        return self.dut.result.value.to_signed()

    def expected(self, a, b, slack, timing_en: bool) -> np.ndarray:
        if self.timing_emu and timing_en:
            return timed_add(np.array(a), np.array(b), np.array(slack))
        return ((np.array(a, dtype=np.int64) + np.array(b)) & 0xFFFFFFFF).astype(np.uint32).view(np.int32)

    def expected_dot(self, xs: list[int], ws: list[int], slack: int) -> int:
        if self.timing_emu:
            return int(timed_dot(np.array(xs), np.array(ws), np.array(slack)))
        return s32(sum(x * w for x, w in zip(xs, ws, strict=True)))


@cocotb.test()
@cocotb.parametrize(timing_en=[True, False])
async def run_test_timed_add(dut, timing_en):
    """Forced accumulator values against timed_add: edge cases at every L, then random draws."""
    tb = TB(dut)
    await tb.cycle_reset()
    dut.timing_en.value = int(timing_en)
    rng = random.Random(1234 + timing_en)
    cases = [(a, x, w, slack) for a, x, w in EDGE_CASES for slack in SLACKS]
    for _ in range(2500):
        kind = rng.randrange(3)
        if kind == 0:
            a = s32(rng.getrandbits(32))
        elif kind == 1:
            a = rng.randint(-40000, 40000)
        else:
            a = rng.choice([-1, 1, 2**31 - 1, -(2**31)]) + rng.randint(-20000, 20000)
        cases.append((s32(a), rng.randint(-128, 127), rng.randint(-128, 127), rng.choice(SLACKS)))
    got = [await tb.timed_step(a, x, w, slack) for a, x, w, slack in cases]
    a, x, w, slack = (np.array(col, dtype=np.int64) for col in zip(*cases, strict=True))
    want = tb.expected(a.astype(np.int32), (x * w).astype(np.int32), slack, timing_en)
    bad = np.flatnonzero(np.array(got, dtype=np.int32) != want)
    for i in bad[:10]:
        tb.log.error("a=%d x=%d w=%d L=%d: got %#010x want %#010x", *cases[i],
                     got[i] & 0xFFFFFFFF, int(want[i]) & 0xFFFFFFFF)
    assert bad.size == 0, f"{bad.size} of {len(cases)} mismatches"


@cocotb.test()
@cocotb.parametrize(slack=[-1, 0, 3, 17, 31])
async def run_test_beat_stream(dut, slack):
    """Tiles of random beats with bubbles: result = timed_dot of the valid beats; operands and
    tags leave one cycle later; bubbles and a tile's first beat behave as specified."""
    tb = TB(dut)
    await tb.cycle_reset()
    dut.timing_en.value = 1
    dut.slack.value = slack & 0xFF
    rng = random.Random(99 + slack)
    prev = None
    for _ in range(40):
        k = rng.choice([1, 2, 3, rng.randint(4, 120)])
        xs = [rng.randint(-128, 127) for _ in range(k)]
        ws = [rng.randint(-128, 127) for _ in range(k)]
        i = 0
        while i < k:
            await FallingEdge(dut.clk)
            bubble = rng.random() < 0.3
            if bubble:
                # a bubble carrying flags and data must still change nothing
                beat = (rng.randint(-128, 127), rng.randint(-128, 127), False, rng.random() < 0.5, True)
            else:
                beat = (xs[i], ws[i], True, i == 0, i == k - 1)
            tb.drive(*beat)
            await RisingEdge(dut.clk)
            await ReadOnly()
            assert dut.x_out.value.to_signed() == beat[0]
            assert dut.w_out.value.to_signed() == beat[1]
            assert (int(dut.valid_out.value), int(dut.first_out.value), int(dut.last_out.value)) == (
                int(beat[2]), int(beat[3]), int(beat[4]))
            if not bubble:
                i += 1
            if prev is not None and i < k:
                assert dut.result.value.to_signed() == prev, "result must hold until the next last beat"
        want = tb.expected_dot(xs, ws, slack)
        assert dut.result.value.to_signed() == want
        prev = want


@pytest.mark.rtl
@pytest.mark.parametrize("timing_emu", [1, 0])
def test_realm_pe(timing_emu):
    run(
        toplevel="realm_pe",
        sources=rtl_sources("realm_pe"),
        test_module="test_realm_pe",
        test_dir=Path(__file__).parent,
        parameters={"TIMING_EMU": timing_emu},
    )
