import csv
import math

import numpy as np
import pytest
from click.testing import CliRunner

import realm_hil
from realm_hil.cli.main import cli
from realm_hil.errors import InputError
from realm_hil.sweep import clock_range, sweep_clock
from realm_hil.workload import random_workload


def test_sweep_shape_zero_at_nominal_high_bits_first_rising():
    workload = random_workload(count=2, m=16, k=576, n=64, seed=1)
    with realm_hil.open_accelerator("twin", seed=1) as acc:
        clocks = list(np.linspace(100, 150, 11))
        points = sweep_clock(acc, workload, clocks)
        assert acc.clock_mhz == 100  # restored
    rates = [p.element_error_rate for p in points]
    assert rates[0] == 0
    assert rates[-1] > 0.5
    assert all(b >= a for a, b in zip(rates, rates[1:], strict=False))
    first = next(p for p in points if p.elements_err)
    wrong_bits = np.nonzero(first.bit_errors)[0]
    assert wrong_bits.min() >= 16, "first errors must hit the high-order bits"


def test_sweep_cli_writes_csv_and_png(tmp_path):
    result = CliRunner().invoke(cli, ["sweep-clock", "--steps", "3", "--gemms", "1", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "sweep.csv").read_text().count("\n") == 4
    assert (tmp_path / "sweep.png").stat().st_size > 1000


def test_sweep_cli_emulated_checks_counts_false_alarms_and_misses(tmp_path):
    args = ["sweep-clock", "--gemms", "2", "--start", "100", "--stop", "172", "--steps", "13", "--out", str(tmp_path)]
    for extra in ([], ["--emulate-checks"]):
        result = CliRunner().invoke(cli, [*args, *extra])
        assert result.exit_code == 0, result.output
        with (tmp_path / "sweep.csv").open() as f:
            rows = list(csv.DictReader(f))
        false_alarm = [float(r["false_alarm_rate"]) for r in rows]
        missed = [float(r["missed_rate"]) for r in rows]
        assert false_alarm[0] == missed[0] == 0 and float(rows[0]["tile_error_rate"]) == 0
        if extra:
            # checksums summing larger values err first; at 172 MHz every bit is stale everywhere
            assert max(false_alarm) > 0 and missed[-1] == 1
        else:
            assert max(false_alarm) == max(missed) == 0


def test_emulated_checks_need_a_modeled_backend():
    result = CliRunner().invoke(cli, ["sweep-clock", "--backend", "board", "--emulate-checks"])
    assert result.exit_code == 2
    assert "emulated checksums need the sim or twin backend, not board" in result.output


@pytest.mark.llm
def test_llm_workload_captures_real_operands():
    from realm_hil.llm.capture import llm_workload

    gemms = llm_workload(tokens=8, layers="0", components="o,down")
    assert [g.label for g in gemms] == ["layer0.o", "layer0.down"]
    assert gemms[0].x.shape == (8, 576) and gemms[1].x.shape == (8, 1536)
    assert all(g.w.shape[1] == 128 and g.x.dtype == np.int8 for g in gemms)
    assert np.abs(gemms[0].x.astype(int)).max() == 127  # per-token scaling uses the full range


def test_clock_range_defaults_and_refusals():
    assert clock_range(100.0, steps=3) == [100.0, 125.0, 150.0]
    assert clock_range(100.0, 110.0, 130.0, 3) == [110.0, 120.0, 130.0]
    for start, stop in ((0.0, 150.0), (-5.0, 150.0), (120.0, 110.0), (120.0, 120.0), (200.0, None), (100.0, math.inf)):
        with pytest.raises(InputError, match="start < stop"):
            clock_range(100.0, start, stop)
