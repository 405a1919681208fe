"""realm_core: bit-exact tiles (exact and timing-emulated) under bubbles and back-pressure, and
one operand beat per cycle across tile boundaries."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import cocotb
import numpy as np
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from cocotb_build import rtl_sources, run
from realm_hil.timing.emulation import timed_dot

# (op_valid idle probability, res_ready stall probability)
HANDSHAKES = [(0.0, 0.0), (0.3, 0.0), (0.0, 0.5), (0.3, 0.5)]


def wrap32(values: np.ndarray) -> np.ndarray:
    return (np.asarray(values, dtype=np.int64) & 0xFFFFFFFF).astype(np.uint32).view(np.int32)


class TB:
    def __init__(self, dut, seed: int):
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        self.n = int(dut.N.value)
        self.timing_emu = int(dut.TIMING_EMU.value)
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.slack = np.full((self.n, self.n), 31)
        self.timing_en = False
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        dut.op_valid.value = 0
        dut.op_data.value = 0
        dut.res_ready.value = 0
        dut.timing_en.value = 0
        dut.l_table.value = 0

    async def cycle_reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    def configure(self, slack: np.ndarray, timing_en: bool):
        """L table and enable; quasi-static, so only while the core is idle."""
        self.slack = np.asarray(slack)
        self.timing_en = timing_en
        self.dut.l_table.value = int.from_bytes(self.slack.astype(np.int8).tobytes(), "little")
        self.dut.timing_en.value = int(timing_en)

    def random_tile(self, k: int, low: int = -128, high: int = 127) -> tuple[np.ndarray, np.ndarray]:
        x = self.np_rng.integers(low, high + 1, size=(self.n, k), dtype=np.int8)
        w = self.np_rng.integers(low, high + 1, size=(k, self.n), dtype=np.int8)
        return x, w

    def beats(self, x: np.ndarray, w: np.ndarray) -> list[int]:
        """op_data words {last, first, beat} of one tile."""
        k = x.shape[1]
        raw = np.ascontiguousarray(np.concatenate([x.T, w], axis=1).astype(np.int8)).view(np.uint8)
        words = [int.from_bytes(row.tobytes(), "little") for row in raw]
        words[0] |= 1 << (16 * self.n)
        words[k - 1] |= 1 << (16 * self.n + 1)
        return words

    def expected(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        if self.timing_emu and self.timing_en:
            return timed_dot(x[:, None, :], w.T[None, :, :], self.slack)
        return wrap32(x.astype(np.int64) @ w.astype(np.int64))

    async def stream(self, beats: list[int], rows_expected: int, idle_prob: float = 0.0,
                     stall_prob: float = 0.0) -> dict:
        """Drive op_* and take res_* until every beat is in and every row is out.

        Returns the rows and cycle counts: `stalls` counts cycles with op_valid high and op_ready low.
        """
        dut = self.dut
        rows: list[np.ndarray] = []
        pops: list[int] = []
        stalls = 0
        i = 0
        cycle = 0
        limit = 4 * len(beats) + 40 * rows_expected + 200
        driven = None
        while i < len(beats) or len(rows) < rows_expected:
            assert cycle < limit, f"stuck: {i}/{len(beats)} beats in, {len(rows)}/{rows_expected} rows out"
            valid = i < len(beats) and self.rng.random() >= idle_prob
            dut.op_valid.value = int(valid)
            if valid and driven != i:
                dut.op_data.value = beats[i]
                driven = i
            ready = self.rng.random() >= stall_prob
            dut.res_ready.value = int(ready)
            await ReadOnly()
            op_ready = bool(dut.op_ready.value)
            if dut.res_valid.value:
                assert dut.busy.value, "busy must cover a tile being drained"
                if ready:
                    raw = dut.res_data.value.to_unsigned().to_bytes(4 * self.n, "little")
                    rows.append(np.frombuffer(raw, dtype="<i4"))
            await RisingEdge(dut.clk)
            if valid:
                if op_ready:
                    pops.append(cycle)
                    i += 1
                else:
                    stalls += 1
            cycle += 1
        dut.op_valid.value = 0
        dut.res_ready.value = 0
        assert len(rows) == rows_expected, "more result rows than tiles"
        await ClockCycles(dut.clk, 2)
        await ReadOnly()
        assert not dut.res_valid.value, "spurious result row"
        assert not dut.busy.value, "busy must clear once every tile is drained"
        await RisingEdge(dut.clk)
        return {"rows": rows, "pops": pops, "stalls": stalls, "cycles": cycle}

    async def check_tiles(self, tiles: list[tuple[np.ndarray, np.ndarray]], idle_prob: float = 0.0,
                          stall_prob: float = 0.0) -> dict:
        beats = [b for x, w in tiles for b in self.beats(x, w)]
        out = await self.stream(beats, self.n * len(tiles), idle_prob, stall_prob)
        for t, (x, w) in enumerate(tiles):
            got = np.stack(out["rows"][t * self.n:(t + 1) * self.n])
            want = self.expected(x, w)
            if not np.array_equal(got, want):
                bad = np.argwhere(got != want)
                for r, c in bad[:8]:
                    self.log.error("tile %d (K=%d) Y[%d,%d]: got %#010x want %#010x L=%d", t, x.shape[1],
                                   r, c, got[r, c] & 0xFFFFFFFF, want[r, c] & 0xFFFFFFFF, self.slack[r, c])
                raise AssertionError(f"tile {t} (K={x.shape[1]}): {len(bad)} wrong elements")
        return out


@cocotb.test()
@cocotb.parametrize(handshake=HANDSHAKES)
async def run_test_exact_tiles(dut, handshake):
    """Random and extreme tiles with timing_en = 0: exact int32 sums even though L is small."""
    tb = TB(dut, seed=1)
    await tb.cycle_reset()
    tb.configure(tb.np_rng.integers(-1, 4, size=(tb.n, tb.n)), timing_en=False)
    n = tb.n
    tiles = [tb.random_tile(k) for k in (1, 2, 1, 1, 3, 2, 2 * n + 1, 2 * n + 2, 3 * n)]
    tiles += [tb.random_tile(tb.rng.randint(1, 300)) for _ in range(6)]
    tiles += [tb.random_tile(50, -128, -128), tb.random_tile(50, 127, 127), tb.random_tile(1, -128, -128)]
    x, w = tb.random_tile(40)
    tiles.append((np.full_like(x, -128), np.full_like(w, 127)))
    tiles += [tb.random_tile(tb.rng.choice([1, 2, 3])) for _ in range(6)]
    await tb.check_tiles(tiles, *handshake)


@cocotb.test()
@cocotb.parametrize(handshake=[(0.0, 0.0), (0.3, 0.5)])
async def run_test_timing_emulation(dut, handshake):
    """Random per-PE L in [-1, 31] with timing_en = 1: Y[r,c] = timed_dot(X[r], W[:,c], L[r,c])
    (exact sums when the core is built with TIMING_EMU = 0)."""
    tb = TB(dut, seed=2)
    await tb.cycle_reset()
    tb.configure(tb.np_rng.integers(-1, 32, size=(tb.n, tb.n)), timing_en=True)
    tiles = [tb.random_tile(k) for k in (1, 2, 5, 64, 200, 3, 120)]
    await tb.check_tiles(tiles, *handshake)
    if tb.timing_emu:
        # the operands must actually provoke late bits, or this test proves nothing
        late = sum(int(np.sum(tb.expected(x, w) != wrap32(x.astype(np.int64) @ w.astype(np.int64))))
                   for x, w in tiles)
        assert late > tb.n * tb.n, f"only {late} elements differ from the exact sums"


@cocotb.test()
async def run_test_timing_slack_classes(dut):
    """L = -1 keeps every accumulator at 0, L >= 31 (31, 32, 127) is exact, mixed in one array."""
    tb = TB(dut, seed=3)
    await tb.cycle_reset()
    slack = tb.np_rng.choice([-128, -1, 0, 30, 31, 32, 127], size=(tb.n, tb.n))
    tb.configure(slack, timing_en=True)
    tiles = [tb.random_tile(k) for k in (1, 33, 150)]
    await tb.check_tiles(tiles)
    if tb.timing_emu:
        for x, w in tiles:
            want = tb.expected(x, w)
            assert np.all(want[slack < 0] == 0)
            exact = wrap32(x.astype(np.int64) @ w.astype(np.int64))
            assert np.array_equal(want[slack >= 31], exact[slack >= 31])


@cocotb.test()
async def run_test_back_to_back(dut):
    """Tiles of K = 64 and of the shortest hazard-free K = 2N + 2 stream with no stall at all:
    one beat per cycle, results out a fixed latency after the last beat."""
    tb = TB(dut, seed=4)
    await tb.cycle_reset()
    tb.configure(np.full((tb.n, tb.n), 31), timing_en=False)
    for k in (64, 2 * tb.n + 2):
        tiles = [tb.random_tile(k) for _ in range(10)]
        out = await tb.check_tiles(tiles)
        beats = k * len(tiles)
        assert out["stalls"] == 0, f"K={k}: {out['stalls']} stall cycles"
        assert out["pops"] == list(range(beats)), f"K={k}: operand beats were not back to back"
        latency = out["cycles"] - beats
        tb.log.info("K=%d: %d beats in %d cycles (drain tail %d)", k, beats, out["cycles"], latency)
        assert latency <= 2 * tb.n + 4


@cocotb.test()
async def run_test_hazard_short_tiles(dut):
    """K = 2N + 1 is one cycle short of the hazard window: each last beat waits exactly once,
    and results stay exact."""
    tb = TB(dut, seed=5)
    await tb.cycle_reset()
    tb.configure(np.full((tb.n, tb.n), 31), timing_en=False)
    tiles = [tb.random_tile(2 * tb.n + 1) for _ in range(6)]
    out = await tb.check_tiles(tiles)
    assert out["stalls"] == len(tiles) - 1


@cocotb.test()
async def run_test_int32_wrap(dut):
    """K = 140000 beats of (-128) * (-128) wraps the int32 accumulator (140000 * 16384 > 2^31).

    The middle beats are driven as one constant block without per-cycle handshakes: a non-last
    beat must never be back-pressured, and any lost beat would change the sum."""
    tb = TB(dut, seed=6)
    await tb.cycle_reset()
    tb.configure(np.full((tb.n, tb.n), 31), timing_en=True)
    k = 140_000
    x = np.full((tb.n, 3), -128, dtype=np.int8)
    w = np.full((3, tb.n), -128, dtype=np.int8)
    first, middle, last = tb.beats(x, w)
    dut.op_valid.value = 1
    dut.op_data.value = first
    await ReadOnly()
    assert dut.op_ready.value
    await RisingEdge(dut.clk)
    dut.op_data.value = middle
    # k - 3 middle beats here and one more on the checked edge below
    await ClockCycles(dut.clk, k - 3)
    await ReadOnly()
    assert dut.op_ready.value and dut.busy.value
    await RisingEdge(dut.clk)
    out = await tb.stream([last], tb.n)
    want = np.int32(wrap32(np.int64(k) * 16384))
    assert want < 0
    assert np.all(np.stack(out["rows"]) == want)


@pytest.mark.rtl
@pytest.mark.parametrize(("n", "timing_emu"), [(8, 1), (16, 1), (8, 0)])
def test_realm_core(n, timing_emu):
    run(
        toplevel="realm_core",
        sources=rtl_sources("realm_core"),
        test_module="test_realm_core",
        test_dir=Path(__file__).parent,
        parameters={"N": n, "TIMING_EMU": timing_emu},
    )
