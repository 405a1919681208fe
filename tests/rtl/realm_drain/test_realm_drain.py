"""realm_drain: each tile's N result rows leave in row order, once each, never before the capture
wavefront reached them, held under back-pressure, with tile_drained on the final row."""

from __future__ import annotations

import itertools
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, ReadWrite, RisingEdge
from cocotb.utils import get_sim_time

from cocotb_build import rtl_sources, run

PERIOD_NS = 10


def cycle_pause():
    return itertools.cycle([1, 1, 1, 0])


def random_pause(seed: int = 1, p: float = 0.5):
    rng = random.Random(seed)
    while True:
        yield int(rng.random() < p)


@dataclass
class Tile:
    rows: list[int]  # row r: N words, result row r of the tile
    done_cycle: int = -1  # the cycle row0_done was high
    offered: int | None = None  # the cycle its first row was offered
    taken: list[tuple[int, int, int]] = field(default_factory=list)  # (cycle, rd_row, res_data)


class TB:
    """Drives the drain as the array would: capture registers that row r of a tile reaches r cycles
    after row0_done, read combinationally through rd_row."""

    def __init__(self, dut, seed: int):
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        self.n = int(dut.N.value)
        self.rng = random.Random(seed)
        self.backpressure = itertools.repeat(0)
        # capture register r: list of (first cycle, value), newest last
        self.capture = [[(0, self.rng.getrandbits(32 * self.n))] for _ in range(self.n)]
        cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
        dut.row0_done.value = 0
        dut.rd_data.value = 0
        dut.res_ready.value = 0

    def set_backpressure_generator(self, generator=None):
        if generator:
            self.backpressure = generator()

    async def cycle_reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        cocotb.start_soon(self._capture_registers())

    @property
    def cycle(self) -> int:
        """Clock cycles since time 0 (both processes below need the same count within an edge)."""
        return int(get_sim_time("ns")) // PERIOD_NS

    def captured(self, row: int, cycle: int) -> int:
        return next(v for start, v in reversed(self.capture[row]) if start <= cycle)

    async def _capture_registers(self):
        """rd_data = capture register rd_row, as it holds in the current cycle."""
        dut = self.dut
        while True:
            await ReadWrite()
            row = int(dut.rd_row.value)
            # no such row: the array's read mux gives garbage
            dut.rd_data.value = self.captured(row, self.cycle) if row < self.n else self.rng.getrandbits(32 * self.n)
            await RisingEdge(dut.clk)

    def random_tile(self) -> Tile:
        return Tile([self.rng.getrandbits(32 * self.n) for _ in range(self.n)])

    async def run_tiles(self, tiles: list[Tile], gaps, limit: int = 100_000):
        """Complete each tile in the array `next(gaps)` cycles after the previous one was drained
        (0: in the cycle right after its final row was taken) and record every row taken."""
        dut = self.dut
        n = self.n
        pending = list(tiles)
        current: Tile | None = None
        start_at = self.cycle + next(gaps)
        offered_prev = None  # (rd_row, res_data) offered but not taken in the previous cycle
        for _ in range(limit):
            if current is None and not pending:
                break
            done = current is None and self.cycle >= start_at
            if done:
                current = pending.pop(0)
                current.done_cycle = self.cycle
                for r in range(n):
                    self.capture[r].append((self.cycle + r, current.rows[r]))
            dut.row0_done.value = int(done)
            ready = not next(self.backpressure)
            dut.res_ready.value = int(ready)
            await ReadOnly()
            valid = bool(dut.res_valid.value)
            row = int(dut.rd_row.value)
            data = int(dut.res_data.value)
            drained = bool(dut.tile_drained.value)
            cycle = self.cycle
            assert drained == (valid and ready and row == n - 1), (
                f"cycle {cycle}: tile_drained={drained} with valid={valid} ready={ready} row={row}")
            if offered_prev is not None:
                assert valid and row == offered_prev, f"cycle {cycle}: row {offered_prev} withdrawn before taken"
            offered_prev = row if valid and not ready else None
            if valid:
                assert current is not None and not done, f"cycle {cycle}: a row offered with no tile completed"
                if current.offered is None:
                    current.offered = cycle
                    # no later than the cycle after row0_done; an earlier start would read old data
                    assert cycle <= current.done_cycle + 1, f"tile started {cycle - current.done_cycle} cycles late"
            await RisingEdge(dut.clk)
            if valid and ready:
                current.taken.append((cycle, row, data))
                if len(current.taken) == n:
                    current = None
                    start_at = self.cycle + next(gaps)
        else:
            raise AssertionError(f"stuck with {len(pending)} tiles left")
        dut.row0_done.value = 0
        dut.res_ready.value = 1
        await ClockCycles(dut.clk, n + 2)
        await ReadOnly()
        assert not dut.res_valid.value, "a row offered after the last tile"
        await RisingEdge(dut.clk)
        dut.res_ready.value = 0
        for t, tile in enumerate(tiles):
            rows = [row for _, row, _ in tile.taken]
            assert rows == list(range(self.n)), f"tile {t}: rows taken in order {rows}"
            for cycle, row, data in tile.taken:
                assert data == tile.rows[row], (
                    f"tile {t} row {row} taken at cycle {cycle} (row0_done at {tile.done_cycle}): wrong data")


def random_gaps(seed: int):
    rng = random.Random(seed)
    while True:
        yield rng.choice([0, 0, 0, 1, 2, 3, 7])


@cocotb.test()
@cocotb.parametrize(backpressure_inserter=[None, cycle_pause, random_pause])
async def run_test_rows(dut, backpressure_inserter):
    """Random tiles back to back and with gaps: rows in order with their data, under back-pressure."""
    tb = TB(dut, seed=1)
    await tb.cycle_reset()
    tb.set_backpressure_generator(backpressure_inserter)
    await tb.run_tiles([tb.random_tile() for _ in range(60)], random_gaps(2))


@cocotb.test()
async def run_test_full_rate(dut):
    """Without back-pressure a tile leaves in N consecutive cycles starting right after row0_done."""
    tb = TB(dut, seed=3)
    await tb.cycle_reset()
    tiles = [tb.random_tile() for _ in range(10)]
    await tb.run_tiles(tiles, itertools.repeat(0))
    for tile in tiles:
        cycles = [cycle for cycle, _, _ in tile.taken]
        assert cycles == list(range(tile.done_cycle + 1, tile.done_cycle + 1 + tb.n)), cycles


@pytest.mark.rtl
@pytest.mark.parametrize("n", [4, 5])
def test_realm_drain(n):
    run(
        toplevel="realm_drain",
        sources=rtl_sources("realm_drain"),
        test_module="test_realm_drain",
        test_dir=Path(__file__).parent,
        parameters={"N": n},
    )
