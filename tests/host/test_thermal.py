"""The junction-temperature model (timing/thermal.py) against the closed-form solutions of
dTj/dt = (Ta(t) + theta P - Tj) / tau, and the modeled die that advances it with the array's cycles."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import realm_hil
from realm_hil.operating_point import OperatingPoint
from realm_hil.tiling import TilePlan
from realm_hil.timing.device_profile import load_profile
from realm_hil.timing.modeled_array import TJ_QUANTUM_C, ModeledArray
from realm_hil.timing.slack import process_factor, slack_table
from realm_hil.timing.thermal import AmbientTrace, HeldJunction, Junction, ThermalEnvironment

PYNQ = load_profile("pynq-z2")  # theta 20 C/W, tau 60 s, static 1.72 W, array 0.15 W at 100 MHz and 1.0 V


def _steps(total: float, rng, count: int) -> np.ndarray:
    """`count` uneven positive steps summing to `total`."""
    cuts = np.sort(rng.uniform(0, total, count - 1))
    return np.diff(np.concatenate([[0.0], cuts, [total]]))


def test_step_response_is_the_first_order_exponential():
    """Junction at the ambient, then a constant power P: Tj(t) = Ta + theta P (1 - exp(-t / tau)),
    63.2 % of the rise after one time constant, whatever the GEMMs the time was cut into."""
    ambient, power = 30.0, 2.5
    junction = Junction(PYNQ, ThermalEnvironment(AmbientTrace.constant(ambient), start_tj_c=ambient))
    rise = 20.0 * power
    elapsed = 0.0
    for step in _steps(5 * 60.0, np.random.default_rng(1), 400):
        junction.advance(step, power)
        elapsed += step
        assert junction.tj_c == pytest.approx(ambient + rise * (1 - math.exp(-elapsed / 60.0)), rel=1e-10)
    assert junction.time_s == pytest.approx(300.0)
    once = Junction(PYNQ, ThermalEnvironment(AmbientTrace.constant(ambient), start_tj_c=ambient))
    once.advance(60.0, power)
    assert (once.tj_c - ambient) / rise == pytest.approx(1 - 1 / math.e, rel=1e-12)
    assert junction.ambient_c == ambient and junction.power_w == power


def test_ramp_response_lags_by_slope_times_tau_then_relaxes():
    """From equilibrium, an ambient ramp of slope s: Tj = Ta(t) + theta P - s tau (1 - exp(-t / tau));
    after the ramp ends at R, the lag s tau (1 - exp(-R / tau)) decays with tau."""
    power, start, end, ramp = 1.8, 25.0, 70.0, 600.0
    slope = (end - start) / ramp
    junction = Junction(PYNQ, ThermalEnvironment(AmbientTrace.ramp(start, end, ramp),
                                                 start_tj_c=start + 20.0 * power))
    rise, tau = 20.0 * power, 60.0

    def closed(t: float) -> float:
        if t <= ramp:
            return start + slope * t + rise - slope * tau * (1 - math.exp(-t / tau))
        lag = slope * tau * (1 - math.exp(-ramp / tau))
        return end + rise - lag * math.exp(-(t - ramp) / tau)

    elapsed = 0.0
    for step in _steps(900.0, np.random.default_rng(2), 250):  # crosses the end of the ramp inside a step
        junction.advance(step, power)
        elapsed += step
        assert junction.tj_c == pytest.approx(closed(elapsed), rel=1e-10)
    # deep into the ramp the lag is s tau = 4.5 C
    held = Junction(PYNQ, ThermalEnvironment(AmbientTrace.ramp(start, end, ramp), start_tj_c=start + rise))
    held.advance(500.0, power)
    assert held.ambient_c + rise - held.tj_c == pytest.approx(slope * tau, rel=1e-3)


def test_a_hold_before_the_ramp_and_time_compression():
    trace = AmbientTrace.ramp(25.0, 45.0, 100.0, hold_s=50.0)
    assert [trace.at(t) for t in (0.0, 50.0, 100.0, 150.0, 400.0)] == [25.0, 25.0, 35.0, 45.0, 45.0]
    fast = Junction(PYNQ, ThermalEnvironment(trace, time_compression=1000.0))
    slow = Junction(PYNQ, ThermalEnvironment(trace))
    assert fast.tj_c == slow.tj_c == 25.0 + 20.0 * 1.72  # idle start: the board on, the array not yet busy
    fast.advance(0.12, 2.0)  # 0.12 s of array time is 120 s of thermal time
    slow.advance(120.0, 2.0)
    assert fast.time_s == pytest.approx(120.0) and fast.tj_c == pytest.approx(slow.tj_c, rel=1e-12)


@pytest.mark.parametrize(("points", "message"), [
    ((), "starts at time 0"),
    (((5.0, 25.0),), "starts at time 0"),
    (((0.0, 25.0), (10.0, 30.0), (10.0, 35.0)), "increase"),
    (((0.0, float("nan")),), "finite"),
])
def test_bad_ambient_traces(points, message):
    with pytest.raises(ValueError, match=message):
        AmbientTrace(points)


def test_bad_environments():
    with pytest.raises(ValueError, match="compression"):
        ThermalEnvironment(AmbientTrace.constant(25.0), time_compression=0.0)
    with pytest.raises(ValueError, match="AmbientTrace"):
        ThermalEnvironment(25.0)
    with pytest.raises(ValueError, match="finite"):
        HeldJunction(float("inf"))
    with pytest.raises(ValueError, match="positive duration"):
        AmbientTrace.ramp(25.0, 70.0, 0.0)


PLAN = TilePlan(m=64, k=576, n=64, array_n=8)  # 64 tiles of 577 cycles + 24: 36,952 array cycles


def test_the_die_spends_the_gemms_cycles_at_its_operating_point():
    """Device time advances by the GEMM's array cycles at the clock (x compression); the power is
    static + array x (f / f_nom) x (V / V_nom)^2 x (operand beats per cycle); the junction follows."""
    env = ThermalEnvironment(AmbientTrace.constant(25.0), time_compression=5e4, start_tj_c=25.0)
    array = ModeledArray(PYNQ, 8, seed=3, environment=env)
    array.set(OperatingPoint(125.0, 0.98))
    cycles = 64 * 577 + 24
    seconds = cycles / 125e6 * 5e4
    power = 1.72 + 0.15 * 1.25 * 0.98 ** 2 * (64 * 576 / cycles)
    tj = 25.0
    for _ in range(5):
        array.spend(PLAN)
        tj = 25.0 + 20.0 * power + (tj - 25.0 - 20.0 * power) * math.exp(-seconds / 60.0)
        reading = array.reading()
        assert reading.tj_c == pytest.approx(tj, rel=1e-12) and reading.power_w == pytest.approx(power, rel=1e-12)
    assert reading.time_s == pytest.approx(5 * seconds, rel=1e-12)
    assert reading.process_factor == process_factor(PYNQ, 3) and reading.ambient_c == 25.0
    assert reading.in_rated_range


def test_tables_follow_the_junction_in_quanta():
    """The L tables are those of the temperature they were computed at, recomputed at a GEMM
    boundary once the junction has moved more than TJ_QUANTUM_C from it."""
    profile = dataclasses.replace(PYNQ, delay_temp_coeff_per_c=0.004)  # coarse, so the tables visibly move
    env = ThermalEnvironment(AmbientTrace.ramp(20.0, 80.0, 60.0), time_compression=2e4, start_tj_c=20.0)
    array = ModeledArray(profile, 8, seed=1, environment=env)
    array.set(OperatingPoint(140.0))
    p = process_factor(profile, 1)
    recomputed = 0
    for _ in range(60):
        before = array.table_tj_c
        moved = array.spend(PLAN)
        reading = array.reading()
        assert moved == (abs(reading.tj_c - before) > TJ_QUANTUM_C)
        assert abs(reading.tj_c - array.table_tj_c) <= TJ_QUANTUM_C
        assert np.array_equal(array.slack, slack_table(profile, 140.0, 8, 1, process=p, tj_c=array.table_tj_c))
        recomputed += moved
    assert recomputed > 10 and array.reading().tj_c > 60.0
    # warmer is slower at 28 nm: the tables only lose slack on the way up
    assert (array.slack <= slack_table(profile, 140.0, 8, 1, process=p, tj_c=20.0)).all()
    assert (array.slack < slack_table(profile, 140.0, 8, 1, process=p, tj_c=20.0)).any()


def test_the_default_die_is_the_sign_off_corner_and_a_held_junction_stays():
    corner = ModeledArray(PYNQ, 8, seed=9)
    held = ModeledArray(PYNQ, 8, seed=9, environment=HeldJunction(40.0))
    for _ in range(3):
        corner.spend(PLAN)
        held.spend(PLAN)
    assert corner.reading().process_factor == 1.0 and corner.reading().tj_c == 85.0
    assert held.reading().process_factor == process_factor(PYNQ, 9) and held.reading().tj_c == 40.0
    assert held.reading().ambient_c is None and held.reading().time_s == pytest.approx(3 * 36952 / 100e6)
    held.set(OperatingPoint(130.0))
    assert np.array_equal(held.slack, slack_table(PYNQ, 130.0, 8, 9, process=process_factor(PYNQ, 9), tj_c=40.0))


def test_a_die_leaving_its_rated_range_says_so():
    # pynq-z2 at 20 C/W and ~1.9 W sits ~38 C above ambient: a 70 C ambient is past the 85 C junction limit
    env = ThermalEnvironment(AmbientTrace.constant(70.0), time_compression=1e5)
    with realm_hil.open_accelerator("twin", environment=env) as acc:
        assert acc.die.tj_c == pytest.approx(70.0 + 20.0 * 1.72) and not acc.die.in_rated_range
    with realm_hil.open_accelerator("twin", environment=HeldJunction(60.0), voltage_v=0.9) as acc:
        assert not acc.die.in_rated_range  # below v_min
    with realm_hil.open_accelerator("reference") as acc:
        assert acc.die is None
