"""Device profiles and per-PE slack tables (docs/timing-error-model.md, "Slack per PE: the device profile")."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
import yaml

from realm_hil.timing.device_profile import PROFILE_DIR, DeviceProfile, list_profiles, load_profile
from realm_hil.timing.slack import (
    check_slack_table,
    check_variation_map,
    first_error_clock,
    slack_table,
    validate_clock,
    variation_map,
)

PROFILES = ("pynq-z2", "zcu104", "kv260")


def _raw(name: str = "pynq-z2") -> dict:
    return yaml.safe_load((PROFILE_DIR / f"{name}.yaml").read_text())


def _write(tmp_path, raw: dict, name: str = "board.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return path


def test_shipped_profiles_load():
    assert set(PROFILES) <= set(list_profiles())
    for name in PROFILES:
        profile = load_profile(name)
        assert isinstance(profile, DeviceProfile)
        assert profile.name == name
        assert profile.worst_path_ns < profile.nominal_period_ns
        assert profile.clock_ceiling_mhz > profile.nominal_clock_mhz


def test_pynq_z2_matches_reference_numbers():
    profile = load_profile("pynq-z2")
    assert profile.nominal_clock_mhz == 100.0
    assert profile.worst_path_ns == pytest.approx(8.395)
    assert 1000 / profile.worst_path_ns == pytest.approx(119.1, abs=0.1)
    assert 1000 / profile.t_base_ns == pytest.approx(142.9, abs=0.1)


def test_load_by_path_and_passthrough(tmp_path):
    path = _write(tmp_path, _raw("zcu104"))
    profile = load_profile(path)
    assert profile == load_profile("zcu104")
    assert load_profile(profile) is profile
    assert load_profile(str(path)) == profile


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.pop("tau_ns_per_bit"), "missing field"),
        (lambda r: r.update(tau_ns_per_bits=0.1), "unknown field"),
        (lambda r: r.update(schema_version=2), "schema_version"),
        (lambda r: r.update(schema_version=True), "schema_version"),
        (lambda r: r.update(t_base_ns="fast"), "finite number"),
        (lambda r: r.update(alpha=float("nan")), "finite number"),
        (lambda r: r.update(tau_ns_per_bit=0), "positive"),
        (lambda r: r.update(variation_sigma=-0.1), "negative"),
        (lambda r: r.update(v_th=1.2), "v_th"),
        (lambda r: r.update(clock_ceiling_mhz=50.0), "ceiling"),
        (lambda r: r.update(t_base_ns=9.0), "rated clock"),
        (lambda r: r.update(name=""), "name"),
    ],
)
def test_bad_profile_fields(tmp_path, edit, message):
    raw = _raw()
    edit(raw)
    with pytest.raises(ValueError, match=message):
        load_profile(_write(tmp_path, raw))


def test_bad_profile_files(tmp_path):
    with pytest.raises(ValueError, match="unknown device profile.*pynq-z2"):
        load_profile("no-such-board")
    with pytest.raises(ValueError, match="does not exist"):
        load_profile(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_profile(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        load_profile(listing)


def test_validate_clock():
    assert validate_clock("pynq-z2", 125) == 125.0
    assert validate_clock("pynq-z2", 200.0) == 200.0
    for bad in (0, -10, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive"):
            validate_clock("pynq-z2", bad)
    with pytest.raises(ValueError, match="safety ceiling.*force"):
        validate_clock("pynq-z2", 250)
    assert validate_clock("pynq-z2", 250, force=True) == 250.0
    with pytest.raises(ValueError, match="positive"):
        validate_clock("pynq-z2", 0, force=True)


@pytest.mark.parametrize("name", PROFILES)
def test_slack_table_deterministic_and_seeded(name):
    clock = first_error_clock(name, 8, 0) * 1.1
    a = slack_table(name, clock, 8, seed=7)
    assert a.dtype == np.int8 and a.shape == (8, 8)
    assert np.array_equal(a, slack_table(name, clock, 8, seed=7))
    assert not np.array_equal(variation_map(name, 8, 7), variation_map(name, 8, 8))


@pytest.mark.parametrize("name", PROFILES)
def test_no_errors_at_nominal_clock(name):
    profile = load_profile(name)
    for seed in range(40):
        for n in (4, 8, 32):
            assert (slack_table(profile, profile.nominal_clock_mhz, n, seed) == 31).all()


def test_per_pe_slack_is_pinned():
    # computed before the checksum accumulators drew their variation from the same generator:
    # adding them must not move a single PE of any existing seed
    assert slack_table("pynq-z2", 125.0, 4, 3).tolist() == [
        [29, 26, 17, 21], [29, 23, 22, 27], [18, 28, 23, 21], [23, 21, 18, 13]]


@pytest.mark.parametrize("name", PROFILES)
def test_check_slack_exact_at_nominal_and_drawn_apart_from_the_pes(name):
    profile = load_profile(name)
    for seed in range(40):
        for n in (4, 8, 32):
            table = check_slack_table(profile, profile.nominal_clock_mhz, n, seed)
            assert table.dtype == np.int8 and table.shape == (3, n)
            assert (table == 31).all()
    factors = check_variation_map(profile, 8, 7)
    assert factors.shape == (3, 8) and factors.max() <= profile.nominal_period_ns / profile.worst_path_ns
    assert not np.isin(factors, variation_map(profile, 8, 7)).any()
    clock = first_error_clock(profile, 8, 7) * 1.2
    assert np.array_equal(check_slack_table(profile, clock, 8, 7), check_slack_table(profile, clock, 8, 7))
    assert (check_slack_table(profile, clock, 8, 7) < 31).any()


def test_truncation_holds_for_extreme_variation(tmp_path):
    raw = _raw()
    raw["variation_sigma"] = 0.5
    profile = load_profile(_write(tmp_path, raw))
    factors = variation_map(profile, 64, 0)
    assert (slack_table(profile, profile.nominal_clock_mhz, 64, 0) == 31).all()
    # Truncation, not clipping: no cluster of PEs sits exactly at the cap.
    assert np.unique(factors).size == factors.size


@pytest.mark.parametrize("name", PROFILES)
def test_monotone_in_clock_and_clamped(name):
    profile = load_profile(name)
    clocks = np.linspace(profile.nominal_clock_mhz, profile.clock_ceiling_mhz, 60)
    tables = [slack_table(profile, c, 16, 3).astype(int) for c in clocks]
    for slower, faster in pairwise(tables):
        assert (faster <= slower).all()
    stacked = np.stack(tables)
    assert stacked.min() == -1 and stacked.max() == 31
    assert set(np.unique(stacked)) <= set(range(-1, 32))
    assert (tables[-1] == -1).all()  # the ceiling is past the all-stale point


@pytest.mark.parametrize("name", PROFILES)
def test_first_error_clock(name):
    f = first_error_clock(name, 8, 5)
    assert load_profile(name).nominal_clock_mhz < f
    assert (slack_table(name, f, 8, 5) == 31).all()
    assert (slack_table(name, math.nextafter(f, math.inf), 8, 5) <= 30).sum() == 1


def test_slack_matches_formula():
    profile = load_profile("kv260")
    clock = 215.0
    factors = variation_map(profile, 8, 11)
    table = slack_table(profile, clock, 8, 11)
    for r, c in [(0, 0), (3, 5), (7, 7)]:
        raw = math.floor((1000 / clock / factors[r, c] - profile.t_base_ns) / profile.tau_ns_per_bit)
        assert table[r, c] == min(max(raw, -1), 31)


def test_voltage_scaling():
    profile = load_profile("zcu104")
    assert profile.voltage_factor(profile.v_nominal) == pytest.approx(1.0)
    assert profile.voltage_factor(0.75) > 1.0 > profile.voltage_factor(0.9)
    clock = first_error_clock(profile, 8, 0)
    nominal = slack_table(profile, clock * 1.05, 8, 0).astype(int)
    under = slack_table(profile, clock * 1.05, 8, 0, voltage=0.80).astype(int)
    assert (under <= nominal).all() and (under < nominal).any()
    assert first_error_clock(profile, 8, 0, voltage=0.80) < clock
    with pytest.raises(ValueError, match="V_th"):
        slack_table(profile, 200.0, 8, 0, voltage=0.2)
