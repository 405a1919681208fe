"""The software bit-flip models: exact rates, independent flips, seeded, the same faults in `run` and `compare`.

The oracle is the model's definition: every element (and, for the per-bit model, every bit)
flips independently with its rate. Counts are checked against the binomial law they must follow
(5 standard deviations), joint frequencies against the product of the rates.
"""

import math

import numpy as np
import pytest

from realm_hil.abft.recovery import SoftwareFaultAccelerator
from realm_hil.compare.models import run_statistical
from realm_hil.error_models import PerBitModel, RealmModel, SeededFaults
from realm_hil.errors import InputError
from realm_hil.llm.gemm import GemmSite
from realm_hil.stats import PolicyConfig
from realm_hil.tiling import int32_gemm
from realm_hil.workload import Gemm

SITE = GemmSite(0, "o", "prefill")


def within(count: int, trials: int, rate: float) -> bool:
    """count is a plausible Binomial(trials, rate) draw (5 sigma)."""
    return abs(count - trials * rate) <= 5 * math.sqrt(trials * rate * (1 - rate)) + 1


def test_realm_flips_its_bit_at_the_binomial_rate_and_nothing_else():
    acc = np.zeros((200, 500), np.int32)
    first = SeededFaults(RealmModel(1e-3, bit=31), seed=7)(acc.copy(), SITE)
    flipped = np.flatnonzero(first)
    assert within(flipped.size, acc.size, 1e-3)
    assert (first.reshape(-1)[flipped] == np.int32(-(2**31))).all()
    ones = np.full(1000, -1, np.int32)
    assert (RealmModel(1.0, bit=3).corrupt(ones, np.random.default_rng(0)) == ~np.int32(8)).all()
    assert SeededFaults(RealmModel(0.0))(acc, SITE) is acc and not acc.any()


def test_realm_flips_are_independent_per_element():
    """Over many small GEMMs every position flips at the rate, and two positions together at its square."""
    model, rng = RealmModel(0.3, bit=0), np.random.default_rng(1)
    draws = np.array([model.corrupt(np.zeros(10, np.int32), rng) for _ in range(20000)]) & 1
    for position in range(10):
        assert within(int(draws[:, position].sum()), len(draws), 0.3)
    # a fixed count per GEMM (round(size * rate)) would give 0.3 * 2/9 here, not 0.09
    assert within(int((draws[:, 0] & draws[:, 1]).sum()), len(draws), 0.09)
    assert within(int(draws.sum()), draws.size, 0.3)


def test_per_bit_rates_are_exact_and_bits_independent():
    rates = np.zeros(32)
    rates[[0, 5, 17, 30, 31]] = [0.5, 0.02, 1e-3, 0.25, 1.0]
    exact = np.arange(-100_000, 100_000, dtype=np.int32).reshape(400, 500)
    out = PerBitModel(rates).corrupt(exact, np.random.default_rng(3))
    diff = (out ^ exact).view(np.uint32).reshape(-1)
    bits = (diff[:, None] >> np.arange(32, dtype=np.uint32)) & 1
    for bit in range(32):
        count = int(bits[:, bit].sum())
        if rates[bit] in (0.0, 1.0):
            assert count == rates[bit] * diff.size, bit
        else:
            assert within(count, diff.size, rates[bit]), bit
    assert within(int((bits[:, 0] & bits[:, 30]).sum()), diff.size, 0.5 * 0.25)
    assert exact[0, 0] == -100_000  # the exact outputs are left alone


def test_one_seed_gives_one_fault_pattern():
    rates = np.full(32, 1e-3)
    for model in (RealmModel(0.01), PerBitModel(rates)):
        acc = np.zeros((64, 64), np.int32)
        a = SeededFaults(model, seed=5)(acc.copy(), SITE)
        b = SeededFaults(model, seed=5)(acc.copy(), SITE)
        c = SeededFaults(model, seed=6)(acc.copy(), SITE)
        assert np.array_equal(a, b) and a.any() and not np.array_equal(a, c)


@pytest.mark.parametrize("bad", [lambda: RealmModel(1.5), lambda: RealmModel(-0.1), lambda: RealmModel(0.1, 32),
                                 lambda: PerBitModel(np.full(31, 0.1)), lambda: PerBitModel(np.full(32, 2.0))])
def test_out_of_range_models_are_refused(bad):
    with pytest.raises(InputError):
        bad()


@pytest.mark.parametrize("model", [RealmModel(0.05, bit=22), PerBitModel(np.linspace(0, 0.01, 32))],
                         ids=["realm", "per-bit"])
def test_run_and_compare_inject_the_same_faults_for_one_seed(model):
    """`run` injects through SoftwareFaultAccelerator (as experiment.py builds it), `compare` through
    run_statistical: for one seed and the same GEMM shapes, outputs and statistics are identical."""
    rng = np.random.default_rng(0)
    workload = [Gemm(rng.integers(-128, 128, (m, k), dtype=np.int8), rng.integers(-128, 128, (k, n), dtype=np.int8),
                     f"g{i}") for i, (m, k, n) in enumerate([(16, 64, 24), (9, 32, 40), (16, 64, 24)])]
    policy = PolicyConfig("classic")
    device = SoftwareFaultAccelerator(SeededFaults(model, 11), array_n=8)
    device.set_policy(policy)
    run_outputs, run_stats = [], []
    for g in workload:
        run_outputs.append(device.gemm(g.x, g.w).y)
        run_stats.append(device.last_stats)
    exact = [int32_gemm(g.x, g.w) for g in workload]
    compared = run_statistical(model, workload, exact, 100.0, 8, policy, seed=11)
    assert sum(int((y != e).sum()) for y, e in zip(run_outputs, exact, strict=True)) > 10
    for y, z, s, t in zip(run_outputs, compared.outputs, run_stats, compared.stats, strict=True):
        assert np.array_equal(y, z)
        assert s.tiles.equals(t.tiles)
