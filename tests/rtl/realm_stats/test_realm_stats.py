"""realm_stats: every statistic equals realm_hil.stats.tile_stats bit for bit, for every policy."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import cocotb
import numpy as np
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from cocotb_build import rtl_sources, run
from realm_hil.stats import HW_MODES, PolicyConfig, TileStats, tile_stats

I32_MIN = -(1 << 31)
I32_MAX = (1 << 31) - 1


def pack_words(values) -> int:
    out = 0
    for i, v in enumerate(values):
        out |= (int(v) & 0xFFFFFFFF) << (32 * i)
    return out


class TB:
    def __init__(self, dut):
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        self.n = len(dut.d) // 32
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        dut.start.value = 0
        dut.d.value = 0
        dut.e.value = 0
        self.set_policy(PolicyConfig())

    def set_policy(self, policy: PolicyConfig):
        dut = self.dut
        dut.mode.value = HW_MODES[policy.mode]
        dut.alpha.value = policy.alpha_q8 & 0xFFFF
        dut.beta.value = policy.beta_q8 & 0xFFFF
        dut.freq_min.value = policy.freq_min
        dut.msd_thresh.value = policy.msd_thresh

    async def cycle_reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def compute(self, d, e, timeout: int = 200) -> TileStats:
        """Drive one tile's deviations, pulse start and read the statistics once done."""
        dut = self.dut
        dut.d.value = pack_words(d)
        dut.e.value = pack_words(e)
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        for _ in range(timeout):
            await RisingEdge(dut.clk)
            if dut.done.value == 1:
                break
        else:
            raise AssertionError("realm_stats: done never rose")
        hist = int(dut.hist.value)
        return TileStats(
            tag=np.zeros(1, dtype=np.int64),
            recover=np.array([bool(dut.recover.value)]),
            any_err=np.array([bool(dut.any_err.value)]),
            msd=np.array([int(dut.msd.value)], dtype=np.uint64),
            max_abs=np.array([int(dut.max_abs.value)], dtype=np.int64),
            theta=np.array([int(dut.theta.value)], dtype=np.int64),
            freq=np.array([int(dut.freq.value)], dtype=np.int64),
            freq_eff=np.array([int(dut.freq_eff.value)], dtype=np.int64),
            row_freq=np.array([int(dut.row_freq.value)], dtype=np.int64),
            hist=np.array([[(hist >> (8 * b)) & 0xFF for b in range(32)]], dtype=np.int64),
        )

    async def check(self, d, e, policy: PolicyConfig):
        self.set_policy(policy)
        got = await self.compute(d, e)
        want = tile_stats(np.array([d], dtype=np.int64).astype(np.int32),
                          np.array([e], dtype=np.int64).astype(np.int32), policy, tags=np.zeros(1))
        if not got.equals(want):
            raise AssertionError(f"d={list(d)} e={list(e)} policy={policy}\n got={got}\nwant={want}")


def chosen_vectors(n: int) -> list[tuple[list[int], list[int]]]:
    zero = [0] * n
    single = [0] * n
    single[n // 2] = 1 << 30
    row_single = [0] * n
    row_single[1] = -7
    ones = list(range(1, n + 1))
    return [
        (zero, zero),
        (single, row_single),
        (zero, row_single),  # only a row deviation: any_err, no column statistics
        ([I32_MIN] * n, [I32_MIN] * n),  # |d| = 2^31 per column, msd = n * 2^31 > 2^32
        ([I32_MAX] * n, zero),
        ([I32_MIN if c % 2 else I32_MAX for c in range(n)], zero),
        ([1 << 31 - (c % 32) for c in range(n)], zero),  # every histogram bin in turn
        ([-(1 << (c % 32)) for c in range(n)], ones),
        (ones, [-v for v in ones]),
        ([(1 << 32) // n] * n, zero),  # msd just above 2^32
        ([(1 << 32) // n - 1] * n, zero),  # msd just below 2^32
    ]


def random_vector(rng: random.Random, n: int) -> list[int]:
    kind = rng.randrange(4)
    if kind == 0:
        return [rng.randint(I32_MIN, I32_MAX) for _ in range(n)]
    if kind == 1:  # sparse errors of random magnitude
        return [rng.choice([0, 0, 0, 1]) * rng.choice([-1, 1]) * (1 << rng.randrange(31)) for _ in range(n)]
    if kind == 2:  # small values around zero
        return [rng.randint(-300, 300) for _ in range(n)]
    return [rng.choice([0, I32_MIN, I32_MAX, -1, 1, 1 << 30, -(1 << 30)]) for _ in range(n)]


def random_policy(rng: random.Random, mode: str) -> PolicyConfig:
    alpha = rng.choice([0, 256, -256, 384, 128, 1 << 15 - 1, -(1 << 15), rng.randint(-(1 << 15), (1 << 15) - 1)])
    beta = rng.choice([0, -25 * 256, 8 * 256, 31 * 256, 32 * 256, -(1 << 15), (1 << 15) - 1,
                       rng.randint(-(1 << 15), (1 << 15) - 1)])
    msd_thresh = rng.choice([0, 1, (1 << 32) - 1, 1 << 32, 1 << 36, (1 << 64) - 1, rng.randrange(1 << 37)])
    return PolicyConfig(mode, alpha, beta, rng.choice([0, 1, 2, 3, 16, 0xFFFF]), msd_thresh)


@cocotb.test()
@cocotb.parametrize(mode=list(HW_MODES))
async def run_test_chosen(dut, mode):
    """Corner vectors (zero, single error, -2^31, msd around 2^32) under several thresholds."""
    tb = TB(dut)
    await tb.cycle_reset()
    rng = random.Random(f"chosen-{mode}")
    policies = [PolicyConfig(mode, 384, -25 * 256, 1, 1 << 32), PolicyConfig(mode, 0, 0, 0, 0),
                PolicyConfig(mode, 256, 0, 2, (1 << 32) - 1)] + [random_policy(rng, mode) for _ in range(3)]
    for d, e in chosen_vectors(tb.n):
        for policy in policies:
            await tb.check(d, e, policy)


@cocotb.test()
@cocotb.parametrize(mode=list(HW_MODES))
async def run_test_random(dut, mode):
    """Random deviations, back to back, under random ALPHA/BETA/FREQ_MIN/MSD_THRESH."""
    tb = TB(dut)
    await tb.cycle_reset()
    rng = random.Random(f"random-{mode}")
    for _ in range(150):
        await tb.check(random_vector(rng, tb.n), random_vector(rng, tb.n), random_policy(rng, mode))


@cocotb.test()
async def run_test_theta_sweep(dut):
    """theta over the whole t range: t < 0, the saturating t >> 8 >= 32, every shift between."""
    tb = TB(dut)
    await tb.cycle_reset()
    d = [0] * tb.n
    d[0] = 12345
    for beta in list(range(-512, 33 * 256, 97)) + [31 * 256 + 255, 32 * 256, -1]:
        await tb.check(d, [0] * tb.n, PolicyConfig("statistical", 0, beta, 1, 0))


@pytest.mark.rtl
@pytest.mark.parametrize("n", [4, 8, 32])
def test_realm_stats(n):
    run(
        toplevel="realm_stats",
        sources=rtl_sources("realm_stats"),
        test_module="test_realm_stats",
        test_dir=Path(__file__).parent,
        parameters={"N": n},
    )
