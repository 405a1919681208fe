"""The clock governor on the twin: back-off as a die heats, hysteresis, ceiling, restore, determinism."""

import json

import numpy as np
import pytest

import realm_hil
from realm_hil.abft.recovery import ProtectedGemm
from realm_hil.governor import Governor, GovernorConfig, WindowStats, govern, governed, write_trace
from realm_hil.operating_point import OperatingPoint
from realm_hil.tiling import int32_gemm
from realm_hil.timing.slack import first_error_clock
from realm_hil.timing.thermal import AmbientTrace, HeldJunction, ThermalEnvironment

PROFILE = "pynq-z2"
CONFIG = GovernorConfig(window_gemms=4)
# the die warms from 25 C through its rated 85 C: ~140 modeled seconds of thermal time in ~1.5 ms of array work
WARMING = ThermalEnvironment(AmbientTrace.ramp(25.0, 80.0, 100.0, hold_s=20.0), time_compression=1e5,
                             start_tj_c=25.0)


def gemm_stream(count: int, seed: int = 3, m: int = 16, k: int = 64, n: int = 64):
    """Alternating near-zero (long carry chains, as in an LLM's accumulators) and full-range operands."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        low, high = (-2, 3) if i % 2 else (-128, 128)
        yield rng.integers(low, high, (m, k), dtype=np.int8), rng.integers(low, high, (k, n), dtype=np.int8), None


def run_twin(environment, count: int = 400, seed: int = 3, config: GovernorConfig = CONFIG, policy="classic"):
    with realm_hil.open_accelerator("twin", seed=seed, environment=environment) as acc:
        protected = ProtectedGemm(acc, policy, measure=True)
        trace = govern(protected, gemm_stream(count), config, PROFILE)
        assert acc.operating_point == acc.nominal
        return trace, acc.die


def test_a_heating_die_forces_the_governor_down():
    trace, die = run_twin(WARMING)
    clocks = [r.clock_mhz for r in trace]
    peak = clocks.index(max(clocks))
    # it climbed well past the rated clock while the die was cool...
    assert max(clocks) >= 1.3 * 100.0
    # ...and the hot die forced it down: back-offs only on windows over budget, and the clock ends lower
    backoffs = [r for r in trace if r.decision == "back off"]
    assert backoffs and all(r.flagged > CONFIG.budget * r.tiles for r in backoffs)
    assert clocks[-1] < max(clocks) and trace[-1].tj_c > trace[peak].tj_c + 10
    # the oracle: the governed clock tracks the die's real edge (its slowest PE exact), which the heat lowered;
    # and ends within a few steps of that edge (errors past it need long carry chains the operands may lack)
    edge = first_error_clock(PROFILE, 8, 3, process=die.process_factor, tj_c=trace[-1].tj_c)
    assert abs(clocks[-1] - edge) <= 3 * CONFIG.step * 100.0
    # what it let through: nothing (classic recomputes every flagged tile; the checksums are exact)
    assert sum(r.escaped for r in trace) == 0 and sum(r.recomputed for r in trace) > 0


def test_budget_exceeded_lowers_the_clock_and_calm_raises_it():
    governor = Governor(CONFIG, PROFILE)
    calm = WindowStats(gemms=4, tiles=1000)
    points = [governor.decide(calm, 40.0)[0].clock_mhz for _ in range(10)]
    assert points == [100.0, 102.0, 102.0, 104.0, 104.0, 106.0, 106.0, 108.0, 108.0, 110.0]
    inside = WindowStats(gemms=4, tiles=1000, flagged=2)  # 0.2 %: inside the 0.25 % budget, not calm
    assert governor.decide(inside, 40.0) == (OperatingPoint(110.0), "hold")
    over = WindowStats(gemms=4, tiles=1000, flagged=3)
    assert governor.decide(over, 40.0) == (OperatingPoint(106.0), "back off")
    # the failing level stays barred while the die is as warm; it lifts once the die has cooled by 2 C
    for _ in range(6):
        point, _ = governor.decide(calm, 40.0)
    assert point.clock_mhz == 108.0
    assert governor.decide(calm, 38.5) == (OperatingPoint(108.0), "hold below bar")
    assert governor.decide(calm, 37.9) == (OperatingPoint(110.0), "raise")


def test_no_oscillation_on_a_stationary_die():
    trace, _ = run_twin(HeldJunction(45.0))
    clocks = [r.clock_mhz for r in trace]
    assert sum(r.decision == "back off" for r in trace) == 1
    # climbed, backed off once, settled just below the failing level: constant for the last half
    half = clocks[len(clocks) // 2:]
    assert len(set(half)) == 1 and half[0] > 120.0


def test_never_above_the_ceiling():
    config = GovernorConfig(window_gemms=4, max_clock_mhz=111.0)
    trace, _ = run_twin(HeldJunction(25.0), count=120, config=config)
    assert max(r.clock_mhz for r in trace) == 110.0
    assert trace[-1].decision == "hold at ceiling"
    # and the profile's ceiling (200 MHz) bounds a config without one
    assert Governor(GovernorConfig(step=0.3), PROFILE).top == 3


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("exit_by", [Interrupted, KeyboardInterrupt])
def test_nominal_point_is_back_on_every_exit(exit_by):
    with realm_hil.open_accelerator("twin", seed=3, environment=HeldJunction(45.0)) as acc:
        protected = ProtectedGemm(acc, "classic")
        with pytest.raises(exit_by):
            with governed(protected, Governor(CONFIG, PROFILE), CONFIG.window_gemms, PROFILE) as engine:
                for i, (x, w, _) in enumerate(gemm_stream(100)):
                    engine.gemm(x, w)
                    if i == 41:  # mid-window, overclocked
                        assert acc.clock_mhz >= 110.0
                        raise exit_by
        assert acc.operating_point == acc.nominal
        # and it computes exactly there again
        x, w, _ = next(gemm_stream(1, seed=9))
        assert np.array_equal(acc.gemm(x, w).y, int32_gemm(x, w))


def test_deterministic_for_a_seed(tmp_path):
    first, _ = run_twin(WARMING, count=200)
    again, _ = run_twin(WARMING, count=200)
    other, _ = run_twin(WARMING, count=200, seed=4)
    assert first == again
    assert [r.clock_mhz for r in first] != [r.clock_mhz for r in other]
    json_path, csv_path = write_trace(first, tmp_path)
    assert csv_path.read_text().count("\n") == len(first) + 1 and json_path.stat().st_size > 0


def test_voltage_knob_lowers_the_supply_until_errors_appear():
    # at a fixed 125 MHz this die is exact at 1.00 V and errs below ~0.9 V (the profile's voltage law)
    config = GovernorConfig(knob="voltage", window_gemms=4, min_voltage_v=0.80, clock_mhz=125.0)
    trace, _ = run_twin(HeldJunction(45.0), count=200, config=config)
    volts = [r.voltage_v for r in trace]
    assert all(r.clock_mhz == 125.0 for r in trace)
    assert volts[0] == 1.0 and min(volts) < 0.95
    backoffs = [r for r in trace if r.decision == "back off"]
    assert backoffs and all(r.flagged > config.budget * r.tiles for r in backoffs)
    assert volts[-1] > min(volts)


@pytest.mark.sim
def test_sim_trace_matches_the_twin():
    """The same governed run on the Verilated RTL and on the twin: identical decisions and statistics per window."""
    traces = {}
    for backend in ("sim", "twin"):
        with realm_hil.open_accelerator(backend, seed=3, environment=WARMING) as acc:
            protected = ProtectedGemm(acc, "classic", measure=True)
            traces[backend] = govern(protected, gemm_stream(160), CONFIG, PROFILE)
            assert acc.operating_point == acc.nominal
    sim, twin = traces["sim"], traces["twin"]
    assert sim == twin
    decisions = {r.decision for r in twin}
    assert {"raise", "back off"} <= decisions and sum(r.flagged for r in twin) > 0


@pytest.mark.parametrize("args, says", [
    (["--governor", "clock", "--clock-mhz", "110"], "not both"),
    (["--governor", "clock", "--error-model", "timing,realm"], "own timing errors"),
    (["--governor", "clock", "--ambient", "25:70"], "START:END:SECONDS"),
    (["--governor", "clock", "--backend", "reference", "--ambient", "25"], "environment"),
    (["--governor", "voltage", "--board", "127.0.0.1:1"], "cannot be set"),
])
def test_run_governor_bad_input_is_one_line(args, says):
    from click.testing import CliRunner

    from realm_hil.cli.main import cli

    result = CliRunner().invoke(cli, ["run", "--backend", "twin", *args])
    assert result.exit_code == 2 and says in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_run_governor_writes_trace_and_plot(tmp_path):
    from click.testing import CliRunner

    from realm_hil.cli.main import cli

    args = ["run", "--backend", "twin", "--governor", "clock", "--abft", "classic", "--tokens", "32", "--window",
            "32", "--ambient", "25", "--seed", "1", "--out", str(tmp_path), "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (row,) = report["rows"]
    trace = report["governor_traces"]["classic"]
    # it left the rated clock, and classic let nothing through (the run's exact oracle)
    assert max(r["clock_mhz"] for r in trace) > 100.0 and row["clock_mhz"] > 100.0
    assert row["residual_errors"] == 0 and row["throughput"] > 1.0
    assert all(r["tj_c"] > 25.0 for r in trace)
    for name in ("governor-classic.csv", "governor-classic.json", "governor.png"):
        assert (tmp_path / name).stat().st_size > 0


@pytest.mark.sim
def test_governed_model_slice_on_the_sim_matches_the_twin():
    """A few windows of SmolLM2's first layers, governed on the Verilated RTL and on the twin: same trace, same run."""
    from realm_hil.experiment import RunConfig, run_experiment

    reports = {}
    for backend in ("sim", "twin"):
        config = RunConfig(backend=backend, tokens=32, window=16, layers="0-1", policies=["classic"],
                           governor="clock", governor_window=1, recover_on="host", seed=16,
                           environment=ThermalEnvironment(AmbientTrace.constant(25.0), time_compression=1e4))
        reports[backend] = run_experiment(config)
    sim, twin = reports["sim"], reports["twin"]
    assert sim.governor_traces == twin.governor_traces
    (row_sim,), (row_twin,) = sim.rows, twin.rows
    for field in ("ppl", "clock_mhz", "tiles", "tiles_err", "tiles_recomputed", "tiles_corrected", "residual_errors"):
        assert getattr(row_sim, field) == getattr(row_twin, field), field
    # die 16 is a slow one (process factor 0.999, first errors ~119 MHz at 62 C): the loop meets its edge
    trace = twin.governor_traces["classic"]
    assert len(trace) >= 20 and sum(r.flagged for r in trace) > 0 and row_twin.tiles_recomputed > 0
    assert any(r.decision == "back off" for r in trace)
