"""The shared timing-error oracle against the model's arrival-time definition, bit by bit.

timing/emulation.py is the oracle of the RTL PE tests (tests/rtl/realm_pe) and of the twin
tests, so it is checked here against the definition itself, written out in plain Python integers
with exact rational times (fractions.Fraction of the given values, so t[i] == T is decided
exactly, never by float rounding). For the update a <- a + b of a 32-bit register:
- propagate P = a XOR b, generate G = a AND b, carries C[0] = 0, C[i+1] = G[i] OR (P[i] AND C[i]),
  sum bits s[i] = P[i] XOR C[i];
- run[i] = consecutive ones of P at positions i-1, i-2, ... (0 if P[i-1] = 0);
- chain length l[i] = C[i] ? 1 + run[i] : 0, arrival t[i] = (t_base + tau l[i]) scale;
- bit i is late when t[i] > T: it keeps a[i]; every other bit takes s[i].
The hardware and the twin take the integer slack L = floor((T / scale - t_base) / tau) instead
(L < 0: every bit late); timing/slack.py computes it from a profile in floating point.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest

from realm_hil.timing.device_profile import DeviceProfile, list_profiles, load_profile
from realm_hil.timing.emulation import timed_add, timed_dot
from realm_hil.timing.slack import check_slack_table, check_variation_map, slack_table, variation_map

BITS = 32
MASK = (1 << BITS) - 1
# Longest possible chain: a carry into bit i needs a generate at some j < i, where P[j] = 0.
MAX_CHAIN = BITS - 1


def bit_list(value: int) -> list[int]:
    return [(value >> i) & 1 for i in range(BITS)]


def carry_chains(a: int, b: int) -> tuple[list[int], list[int]]:
    """Sum bits s[i] and chain lengths l[i] of a + b, from the definition."""
    p, g = bit_list(a ^ b), bit_list(a & b)
    c = [0]
    for i in range(BITS):
        c.append(g[i] | (p[i] & c[i]))
    chains = []
    for i in range(BITS):
        run = 0
        while run < i and p[i - 1 - run]:
            run += 1
        chains.append(1 + run if c[i] else 0)
    return [p[i] ^ c[i] for i in range(BITS)], chains


def late_by_chain(period: Fraction, scale: Fraction, t_base: Fraction, tau: Fraction) -> tuple[bool, ...]:
    """For each chain length l = 0..32: is a sum bit with that chain late, t = (t_base + tau l) scale > T?"""
    return tuple((t_base + tau * length) * scale > period for length in range(BITS + 1))


def register_after(a: int, b: int, late: tuple[bool, ...]) -> int:
    """The register after the edge: late bits keep a[i], the others take s[i]."""
    s, chains = carry_chains(a, b)
    old = bit_list(a)
    return sum((old[i] if late[chains[i]] else s[i]) << i for i in range(BITS))


def integer_slack(period: Fraction, scale: Fraction, t_base: Fraction, tau: Fraction) -> int:
    return math.floor((period / scale - t_base) / tau)


def operand_pairs(rng: np.random.Generator) -> list[tuple[int, int]]:
    """Unsigned 32-bit (a, b): random words, accumulator-like updates, zero crossings, and for every
    bit i and every chain length 1..i one addition whose carry into i has exactly that length."""
    pairs = [(int(a), int(b)) for a, b in rng.integers(0, 1 << BITS, size=(120, 2), dtype=np.uint64)]
    for _ in range(120):
        acc = int(rng.integers(-(1 << 20), 1 << 20))
        product = int(rng.integers(-128, 128)) * int(rng.integers(-128, 128))
        pairs.append((acc & MASK, product & MASK))
    for small in (1, 2, 3, 7, 100, 16384):
        # negative accumulator plus a larger product: the carry ripples through every sign bit
        pairs += [((-small) & MASK, small + 1), ((-small) & MASK, small), (small, (-small - 1) & MASK)]
        # positive accumulator plus a smaller negative product: the borrow ripples to the top
        pairs += [(small + 1, (-small) & MASK), ((1 << 31) - small, small)]
    pairs += [(MASK, 1), (1, MASK), (0x7FFFFFFF, 1), (0x80000000, 0x80000000), (MASK, MASK), (0, 0)]
    for i in range(1, BITS):
        for length in range(1, i + 1):
            j = i - length  # generate at j, propagate through j+1 .. i-1
            noise_a, noise_b = (int(v) for v in rng.integers(0, 1 << BITS, size=2, dtype=np.uint64))
            keep = ~((1 << (i + 1)) - (1 << j)) & MASK  # random bits outside j .. i
            run = (1 << i) - (1 << (j + 1))
            a = (noise_a & keep) | (1 << j) | run | (noise_a & (1 << i))
            b = (noise_b & keep) | (1 << j)
            pairs.append((a, b))
    return pairs


def as_int32(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.uint32).view(np.int32)


class Checker:
    """timed_add on every operand pair against the definition, memoized by what decides each output."""

    def __init__(self, seed: int = 0) -> None:
        self.pairs = operand_pairs(np.random.default_rng(seed))
        self.a = as_int32([a for a, _ in self.pairs])
        self.b = as_int32([b for _, b in self.pairs])
        self._defined: dict[tuple[bool, ...], np.ndarray] = {}
        self._emulated: dict[int, np.ndarray] = {}

    def defined(self, late: tuple[bool, ...]) -> np.ndarray:
        if late not in self._defined:
            self._defined[late] = as_int32([register_after(a, b, late) for a, b in self.pairs])
        return self._defined[late]

    def emulated(self, slack: int) -> np.ndarray:
        if slack not in self._emulated:
            self._emulated[slack] = timed_add(self.a, self.b, np.int64(slack))
        return self._emulated[slack]

    def mismatches(self, slack: int, late: tuple[bool, ...]) -> np.ndarray:
        """Indices of the pairs where timed_add under `slack` differs from the definition under `late`."""
        return np.flatnonzero(self.emulated(slack) != self.defined(late))


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker()


def test_definition_adds_and_operands_cover_every_chain(checker):
    """The bit-level sum is a + b, and the operands realize every (bit, chain length) the model allows."""
    seen = set()
    for a, b in checker.pairs:
        s, chains = carry_chains(a, b)
        assert sum(bit << i for i, bit in enumerate(s)) == (a + b) & MASK
        seen.update(enumerate(chains))
    assert seen == {(i, 0) for i in range(BITS)} | {(i, n) for i in range(1, BITS) for n in range(1, i + 1)}
    assert max(n for _, n in seen) == MAX_CHAIN


def random_parameters(rng: np.random.Generator, count: int):
    """(T, scale, t_base, tau) whose exact (T / scale - t_base) / tau lies anywhere in [-3, 34]."""
    for _ in range(count):
        t_base, tau, scale = rng.uniform(0.5, 10), rng.uniform(0.005, 0.5), rng.uniform(0.7, 1.5)
        period = (t_base + tau * rng.uniform(-3, 34)) * scale
        yield tuple(Fraction(float(v)) for v in (period, scale, t_base, tau))


def tie_parameters(rng: np.random.Generator, count: int):
    """(T, scale, t_base, tau) with T = (t_base + tau l) scale exactly, and a hair either side of it."""
    hair = Fraction(1, 10**30)
    for _ in range(count):
        t_base, tau, scale = (Fraction(float(v)) for v in (rng.uniform(0.5, 10), rng.uniform(0.005, 0.5),
                                                            rng.uniform(0.7, 1.5)))
        for length in range(-1, BITS + 2):
            period = (t_base + tau * length) * scale
            for p in (period - hair, period, period + hair):
                yield p, scale, t_base, tau


def test_timed_add_follows_arrival_times(checker):
    """For random parameters and exact ties (t[i] == T is on time), timed_add under L, raw or clamped
    to the int8 table range [-1, 31], sets every bit as the arrival-time definition says."""
    rng = np.random.default_rng(1)
    slacks = set()
    for params in [*random_parameters(rng, 200), *tie_parameters(rng, 4)]:
        late = late_by_chain(*params)
        slack = integer_slack(*params)
        slacks.add(slack)
        for table_value in (slack, min(max(slack, -1), 31)):
            bad = checker.mismatches(table_value, late)
            assert bad.size == 0, (params, slack, [checker.pairs[i] for i in bad[:3]])
    assert set(range(-1, 32)) <= slacks


def die_factor(profile: DeviceProfile, voltage: float | None, process: float, tj: float | None) -> Fraction:
    """process x (1 + k_T (Tj - Ts)) x alpha-law(V) / alpha-law(v_min), from the profile's numbers
    (docs/timing-error-model.md, "Process, voltage and temperature"), each factor a float as given."""
    volts = profile.v_nominal if voltage is None else voltage
    law = [v / (v - profile.v_th) ** profile.alpha for v in (volts, profile.v_min)]
    signoff = profile.tj_min_c if profile.delay_temp_coeff_per_c < 0 else profile.tj_max_c
    temp = 1.0 if tj is None else 1.0 + profile.delay_temp_coeff_per_c * (tj - signoff)
    return Fraction(process) * Fraction(temp) * Fraction(law[0] / law[1])


def pe_cases(profile: DeviceProfile, clock_mhz: float, seed: int, voltage: float | None, n: int = 8,
             process: float = 1.0, tj: float | None = None):
    """(L from slack.py, late-by-chain from the definition) of every PE and checksum accumulator."""
    period = Fraction(1000) / Fraction(clock_mhz)
    factor = die_factor(profile, voltage, process, tj)
    t_base, tau = Fraction(profile.t_base_ns), Fraction(profile.tau_ns_per_bit)
    die = {"process": process, "tj_c": tj}
    for tables, variation in (
        (slack_table(profile, clock_mhz, n, seed, voltage, **die), variation_map(profile, n, seed)),
        (check_slack_table(profile, clock_mhz, n, seed, voltage, **die), check_variation_map(profile, n, seed)),
    ):
        for slack, v in zip(tables.reshape(-1), variation.reshape(-1), strict=True):
            yield int(slack), late_by_chain(period, Fraction(float(v)) * factor, t_base, tau)


@pytest.mark.parametrize("name", list_profiles())
def test_slack_tables_follow_arrival_times(checker, name):
    """slack.py's L of every PE and checksum accumulator, at random clocks, voltages, junction
    temperatures and die process factors across the whole error band, makes timed_add set every bit
    as the arrival times of that element say."""
    profile = load_profile(name)
    rng = np.random.default_rng(2)
    seen = set()
    for seed in range(3):
        for voltage in (None, profile.v_min, profile.v_nominal * 0.93, profile.v_nominal * 1.04):
            process = float(rng.uniform(profile.process_factor_min, profile.process_factor_max))
            tj = float(rng.uniform(profile.tj_min_c - 10, profile.tj_max_c + 10))
            for clock in rng.uniform(profile.nominal_clock_mhz, profile.clock_ceiling_mhz, 12):
                for slack, late in pe_cases(profile, float(clock), seed, voltage, process=process, tj=tj):
                    seen.add(slack)
                    bad = checker.mismatches(slack, late)
                    assert bad.size == 0, (name, seed, voltage, clock, slack, [checker.pairs[i] for i in bad[:3]])
    assert seen == set(range(-1, 32))


def flat_profile(t_base: float, tau: float, nominal_mhz: float) -> DeviceProfile:
    """A profile without per-PE variation, at the slow corner (v_min, process 1) scale = 1 exactly."""
    return dataclasses.replace(load_profile("pynq-z2"), name="flat", device="test", nominal_clock_mhz=nominal_mhz,
                               clock_ceiling_mhz=1000.0, t_base_ns=t_base, tau_ns_per_bit=tau, variation_sigma=0.0)


@pytest.mark.parametrize("t_base, tau, nominal, clocks", [
    # T = 1000 / clock = t_base + tau l exactly in binary floating point: bits with chain l arrive at T
    (1.0, 1.0, 31.25, [1000.0, 500.0, 250.0, 200.0, 125.0, 100.0, 62.5, 50.0, 40.0, 31.25]),
    (8.0, 0.5, 40.0, [125.0, 100.0, 80.0, 62.5, 50.0, 40.0]),
])
def test_slack_tables_at_exact_ties(checker, t_base, tau, nominal, clocks):
    """A bit arriving exactly at the clock edge is on time: slack.py puts L at that chain length.
    (1 ns t_base and tau at 31.25 MHz: the worst path fills the nominal period exactly, L = 31.)"""
    profile = flat_profile(t_base, tau, nominal)
    for clock in clocks:
        period = Fraction(1000) / Fraction(clock)
        tie = (period - Fraction(t_base)) / Fraction(tau)
        assert tie.denominator == 1
        (slack, late), *_ = pe_cases(profile, clock, 0, profile.v_min, n=1)
        assert slack == min(int(tie), 31)
        assert checker.mismatches(slack, late).size == 0


def test_slack_tables_exact_at_and_next_to_ties(checker):
    """With decimal profile values a clock at a tie is itself rounded; L must still follow the
    definition exactly there (a float floor landed one off at 8 of these 34 tie clocks)."""
    profile = flat_profile(7.0, 0.045, 100.0)
    rng = np.random.default_rng(3)
    for length in range(-1, BITS + 1):
        tie_clock = 1000.0 / (7.0 + 0.045 * length)
        near = [*np.nextafter(tie_clock, [0.0, 2000.0]), *(tie_clock * (1 + rng.uniform(-1e-9, 1e-9, 4)))]
        for clock in (tie_clock, *near):
            period = Fraction(1000) / Fraction(float(clock))
            x = (period - Fraction(7.0)) / Fraction(0.045)
            (slack, late), *_ = pe_cases(profile, float(clock), 0, profile.v_min, n=1)
            assert checker.mismatches(slack, late).size == 0, (clock, slack, float(x))


def test_timed_dot_follows_arrival_times():
    """A PE's dot product: int8 products sign-extended to 32 bits, accumulated from a reset register."""
    rng = np.random.default_rng(4)
    x = rng.integers(-128, 128, (12, 40), dtype=np.int8)
    w = rng.integers(-128, 128, (12, 40), dtype=np.int8)
    # a zero-crossing walk: the running sum changes sign at almost every step
    x[0], w[0] = np.resize([100, -100], 40), np.resize([101, 102], 40)
    t_base, tau = Fraction(7), Fraction(1, 20)
    for slack in (-1, 0, 3, 14, 24, 29, 30, 31):
        period = t_base + tau * slack + Fraction(1, 40)
        late = late_by_chain(period, Fraction(1), t_base, tau)
        expected = []
        for xs, ws in zip(x.tolist(), w.tolist(), strict=True):
            acc = 0
            for xv, wv in zip(xs, ws, strict=True):
                acc = register_after(acc, (xv * wv) & MASK, late)
            expected.append(acc)
        assert np.array_equal(timed_dot(x, w, np.full(12, slack)), as_int32(expected)), slack
