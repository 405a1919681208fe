"""Software error models against the hardware, and calibration of the timing profile."""

import dataclasses

import numpy as np
import pytest
from click.testing import CliRunner

import realm_hil
from realm_hil.backends.twin import TwinAccelerator
from realm_hil.cli.compare import compare as compare_cmd
from realm_hil.compare import calibrate, compare_models, write_profile
from realm_hil.sweep import sweep_clock
from realm_hil.timing.device_profile import load_profile
from realm_hil.workload import random_workload

CLOCKS = [116.0, 120.0, 125.0]


@pytest.mark.sim
def test_twin_is_exactly_the_hardware_and_realm_is_not():
    workload = random_workload(3, m=16, k=256, n=32, seed=2)
    with realm_hil.open_accelerator("sim", seed=4) as hw, realm_hil.open_accelerator("twin", seed=4) as twin:
        result = compare_models(hw, twin, workload, CLOCKS)
    for clock in result.clocks:
        assert clock.profiles["hardware"].elements_err > 0
        assert clock.distances["twin"].is_zero
        realm = clock.distances["realm"]
        assert realm.js_bits > 0.3 and realm.wasserstein_log2 > 0.5 and realm.ks_log2 > 0.2


def test_calibration_recovers_t_base_and_tau():
    base = load_profile("pynq-z2")
    truth = dataclasses.replace(base, t_base_ns=6.6, tau_ns_per_bit=0.052)
    guess = dataclasses.replace(base, t_base_ns=7.1, tau_ns_per_bit=0.045, variation_sigma=0.02)
    workload = random_workload(2, m=16, k=256, n=32, seed=3)
    points = sweep_clock(TwinAccelerator(profile=truth, seed=5), workload, [122.0, 130.0, 140.0, 150.0])
    result = calibrate(guess, workload, points, seed=5, rounds=4, steps=15)
    assert result.fitted.t_base_ns == pytest.approx(truth.t_base_ns, rel=0.05)
    assert result.fitted.tau_ns_per_bit == pytest.approx(truth.tau_ns_per_bit, rel=0.05)
    assert result.loss_after < result.loss_before / 100
    assert max(result.js_after) < min(result.js_before)


def test_written_profile_loads_with_the_fitted_values(tmp_path):
    base = load_profile("pynq-z2")
    workload = random_workload(1, m=8, k=128, n=16, seed=1)
    points = sweep_clock(TwinAccelerator(profile=base), workload, [120.0, 130.0, 140.0])
    result = calibrate(base, workload, points, rounds=1, steps=5)
    written = write_profile(result, tmp_path / "fit.yaml", "pynq-z2-fit")
    assert written.name == "pynq-z2-fit"
    assert written.t_base_ns == pytest.approx(result.fitted.t_base_ns, abs=1e-5)
    assert "Calibrated from pynq-z2" in (tmp_path / "fit.yaml").read_text()


def test_calibration_needs_three_clocks():
    workload = random_workload(1, m=8, k=64, n=8)
    points = sweep_clock(TwinAccelerator(), workload, [120.0, 130.0])
    with pytest.raises(ValueError, match="3 or more"):
        calibrate("pynq-z2", workload, points)


@pytest.mark.sim
def test_cli_writes_html_png_and_csv(tmp_path):
    out = tmp_path / "report"
    args = ["--workload", "random", "--gemms", "2", "--out", str(out)]
    for mhz in CLOCKS[:2]:
        args += ["--clock-mhz", str(mhz)]
    result = CliRunner().invoke(compare_cmd, args)
    assert result.exit_code == 0, result.output
    assert "twin" in result.output and "realm" in result.output
    page = (out / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 3
    assert {p.name for p in out.glob("*.png")} == {"summary.png", "clock_116.0MHz.png", "clock_120.0MHz.png"}
    rows = (out / "summary.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 4
    assert np.isclose(float(rows[1].split(",")[3]), float(rows[4].split(",")[3]))
