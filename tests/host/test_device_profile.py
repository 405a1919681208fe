"""Device profiles and per-PE slack tables (docs/timing-error-model.md, "Slack per PE: the device profile"
and "Process, voltage and temperature")."""

from __future__ import annotations

import dataclasses
import math
from itertools import pairwise

import numpy as np
import pytest
import yaml

from realm_hil.timing.device_profile import PROFILE_DIR, PVT_FIELDS, DeviceProfile, list_profiles, load_profile
from realm_hil.timing.slack import (
    check_slack_table,
    check_variation_map,
    first_error_clock,
    process_factor,
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
        (lambda r: r.update(schema_version=3), "schema_version"),
        (lambda r: r.update(schema_version=True), "schema_version"),
        (lambda r: r.pop("thermal_tau_s"), "missing field.*thermal_tau_s"),
        (lambda r: r.update(t_base_ns="fast"), "finite number"),
        (lambda r: r.update(alpha=float("nan")), "finite number"),
        (lambda r: r.update(tau_ns_per_bit=0), "positive"),
        (lambda r: r.update(variation_sigma=-0.1), "negative"),
        (lambda r: r.update(v_th=1.2), "v_th"),
        (lambda r: r.update(v_min=1.02), "v_min <= v_nominal"),
        (lambda r: r.update(v_max=0.99), "v_nominal <= v_max"),
        (lambda r: r.update(tj_min_c=90.0), "tj_min_c"),
        (lambda r: r.update(process_factor_max=1.05), "slowest die"),
        (lambda r: r.update(process_factor_min=0.0), "process factors"),
        (lambda r: r.update(theta_ja_c_per_w=-1.0), "negative"),
        (lambda r: r.update(thermal_tau_s=0.0), "positive"),
        (lambda r: r.update(delay_temp_coeff_per_c=0.02), "vanish"),
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


def test_schema_1_is_refused_naming_what_to_add(tmp_path):
    raw = {k: v for k, v in _raw().items() if k not in PVT_FIELDS}
    raw["schema_version"] = 1
    with pytest.raises(ValueError, match="schema_version 1 predates the PVT model") as info:
        load_profile(_write(tmp_path, raw))
    assert all(field in str(info.value) for field in PVT_FIELDS)
    assert "v_min" in str(info.value) and "slow corner" in str(info.value)


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
    # computed before the checksum accumulators drew their variation from the same generator, and
    # before the PVT model: neither may move a single PE of any existing seed. The table was the
    # slowest die at "nominal" supply, which the PVT model now calls the slow corner, v_min.
    assert slack_table("pynq-z2", 125.0, 4, 3, 0.95).tolist() == [
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


@pytest.mark.parametrize(("name", "clock", "voltage", "process", "tj"), [
    ("kv260", 215.0, 0.698, 1.0, None),  # the slow corner: the variation alone
    ("kv260", 215.0, None, 0.93, 40.0),  # nominal 0.72 V, a faster die, warmer than the 0 C sign-off
    ("pynq-z2", 140.0, None, 0.9, 30.0),
    ("zcu104", 250.0, 0.86, 0.97, 10.0),
])
def test_slack_matches_formula(name, clock, voltage, process, tj):
    """L = floor((T / scale - t_base) / tau), scale = variation x process x (1 + k_T (Tj - Ts)) x
    alpha-law(V) / alpha-law(v_min), written out here from the profile's numbers."""
    profile = load_profile(name)
    volts = profile.v_nominal if voltage is None else voltage
    law = [v / (v - profile.v_th) ** profile.alpha for v in (volts, profile.v_min)]
    signoff = profile.tj_min_c if profile.delay_temp_coeff_per_c < 0 else profile.tj_max_c
    temp = 1.0 if tj is None else 1 + profile.delay_temp_coeff_per_c * (tj - signoff)
    die = process * temp * law[0] / law[1]
    factors = variation_map(profile, 8, 11)
    table = slack_table(profile, clock, 8, 11, voltage, process=process, tj_c=tj)
    assert len(np.unique(table)) > 3
    for r in range(8):
        for c in range(8):
            raw = math.floor((1000 / clock / (factors[r, c] * die) - profile.t_base_ns) / profile.tau_ns_per_bit)
            assert table[r, c] == min(max(raw, -1), 31), (r, c)


def test_voltage_scaling():
    profile = load_profile("zcu104")
    # referenced to the sign-off supply v_min, not to nominal
    assert profile.voltage_factor(profile.v_min) == 1.0
    d = [v / (v - 0.30) ** 1.3 for v in (0.825, 0.85, 0.9)]
    assert profile.voltage_factor() == profile.voltage_factor(0.85) == pytest.approx(d[1] / d[0])
    assert profile.voltage_factor(0.9) == pytest.approx(d[2] / d[0])
    assert profile.voltage_factor(0.75) > 1.0 > profile.voltage_factor(0.9)
    clock = first_error_clock(profile, 8, 0)
    nominal = slack_table(profile, clock * 1.05, 8, 0).astype(int)
    under = slack_table(profile, clock * 1.05, 8, 0, voltage=0.80).astype(int)
    assert (under <= nominal).all() and (under < nominal).any()
    assert first_error_clock(profile, 8, 0, voltage=0.80) < clock
    with pytest.raises(ValueError, match="V_th"):
        slack_table(profile, 200.0, 8, 0, voltage=0.2)


def test_process_factor_is_the_seeds_own_stream():
    profile = load_profile("pynq-z2")
    factors = np.array([process_factor(profile, seed) for seed in range(2000)])
    assert factors.min() >= profile.process_factor_min and factors.max() <= profile.process_factor_max
    # uniform on [0.85, 1]: mean 0.925, sigma 0.15 / sqrt(12) = 4.3 %
    assert factors.mean() == pytest.approx(0.925, abs=0.005)
    assert factors.std() == pytest.approx(0.15 / math.sqrt(12), rel=0.05)
    assert process_factor(profile, 7) == process_factor("pynq-z2", 7) != process_factor(profile, 8)
    # not the per-PE stream: no die factor equals its seed's first per-PE uniform draw mapped the same way
    first_draws = np.array([np.random.default_rng(seed).random() for seed in range(2000)])
    assert not np.isclose(factors, 0.85 + 0.15 * first_draws).any()


def _wide(profile: DeviceProfile) -> DeviceProfile:
    # with sigma 0.5 the truncation binds: the slowest PEs of every die sit just under the cap,
    # so any factor above 1 anywhere in the rated range shows up as an L of 30
    return dataclasses.replace(profile, variation_sigma=0.5)


def _rated_points(profile: DeviceProfile, rng) -> list[tuple[float | None, float | None]]:
    corners = [(t, v) for t in (profile.tj_min_c, profile.tj_max_c) for v in (profile.v_min, profile.v_max)]
    inside = (float(rng.uniform(profile.tj_min_c, profile.tj_max_c)), float(rng.uniform(profile.v_min, profile.v_max)))
    return [*corners, inside]


@pytest.mark.parametrize("name", PROFILES)
@pytest.mark.parametrize("wide", [False, True])
def test_every_die_meets_the_rated_clock_across_the_rated_range(name, wide):
    """Sign-off: at the rated clock every die of the profile's distribution (200 seeds), at every
    junction temperature and supply of the data sheet's ranges (the four corners and a random point
    inside), has L = 31 on every PE and checksum accumulator; so does the slowest die (process 1)."""
    profile = load_profile(name)
    profile = _wide(profile) if wide else profile
    rng = np.random.default_rng(15)
    clock = profile.nominal_clock_mhz
    for seed in range(200):
        dies = [(process_factor(profile, seed), tj, v) for tj, v in _rated_points(profile, rng)]
        dies.append((1.0, profile.signoff_tj_c, profile.v_min))
        for process, tj, v in dies:
            for table in (slack_table(profile, clock, 8, seed, v, process=process, tj_c=tj),
                          check_slack_table(profile, clock, 8, seed, v, process=process, tj_c=tj)):
                assert (table == 31).all(), (seed, process, tj, v)


@pytest.mark.parametrize("name", PROFILES)
def test_the_slow_corner_is_the_profiles_first_error_behaviour(name):
    """At the slow corner (process 1, v_min, the binding temperature) an unvaried PE errs exactly
    above 1000 / (t_base + 31 tau) MHz and is all stale above 1000 / t_base MHz, the figures each
    profile states; a varied die errs first where its slowest PE's worst path fills the period."""
    profile = load_profile(name)
    corner = {"voltage": profile.v_min, "process": 1.0, "tj_c": profile.signoff_tj_c}
    flat = dataclasses.replace(profile, variation_sigma=0.0)
    edge = first_error_clock(flat, 4, 0, **corner)
    assert edge == pytest.approx(1000 / profile.worst_path_ns, rel=1e-12)
    assert (slack_table(flat, edge, 4, 0, **corner) == 31).all()
    assert (slack_table(flat, math.nextafter(edge, math.inf), 4, 0, **corner) == 30).all()
    stale = 1000 / profile.t_base_ns
    assert (slack_table(flat, stale * (1 - 1e-9), 4, 0, **corner) == 0).all()
    assert (slack_table(flat, stale * (1 + 1e-9), 4, 0, **corner) == -1).all()
    stated = {"pynq-z2": (119, 143), "zcu104": (240, 282), "kv260": (189, 222)}[name]
    assert (round(1000 / profile.worst_path_ns), round(stale)) == stated
    slowest = variation_map(profile, 8, 5).max()
    assert first_error_clock(profile, 8, 5, **corner) == pytest.approx(1000 / (slowest * profile.worst_path_ns),
                                                                       rel=1e-12)


def test_the_nominal_supply_is_faster_than_the_slow_corner():
    # the correction of the PVT model: the sign-off delays are at v_min, a board runs at nominal
    for name, gain in (("pynq-z2", 1.0542), ("zcu104", 1.0311), ("kv260", 1.0397)):
        profile = load_profile(name)
        at_min = first_error_clock(profile, 8, 0, profile.v_min)
        assert first_error_clock(profile, 8, 0) == pytest.approx(at_min * gain, rel=1e-4)


def test_temperature_moves_the_first_errors_the_way_each_node_does():
    """28 nm (pynq-z2): cooler is faster. 16 nm at 0.72 V (kv260): temperature inversion, warmer is
    faster. 16 nm at 0.85 V (zcu104): no temperature dependence in the model."""
    def edge(name, tj):
        return first_error_clock(name, 8, 3, tj_c=tj)

    assert edge("pynq-z2", 25.0) / edge("pynq-z2", 85.0) == pytest.approx(1 / (1 - 0.0005 * 60), rel=1e-9)
    assert edge("kv260", 60.0) / edge("kv260", 0.0) == pytest.approx(1 / (1 - 0.0003 * 60), rel=1e-9)
    assert edge("zcu104", 20.0) == edge("zcu104", 100.0)
    assert load_profile("pynq-z2").signoff_tj_c == 85.0 and load_profile("kv260").signoff_tj_c == 0.0


@pytest.mark.parametrize(("name", "outside"), [
    ("pynq-z2", {"tj_c": 100.0}),  # hotter than the commercial grade's 85 C
    ("pynq-z2", {"voltage": 0.92}),  # below VCCINT min 0.95 V
    ("kv260", {"tj_c": -20.0}),  # colder than 0 C under temperature inversion
    ("zcu104", {"voltage": 0.80}),
])
def test_outside_the_rated_range_the_rated_clock_may_err(name, outside):
    """Sign-off guarantees nothing outside the data sheet's ranges: the slowest die whose slowest PEs
    fill the period at the corner errs at the rated clock there."""
    profile = _wide(load_profile(name))
    corner = {"voltage": profile.v_min, "process": 1.0, "tj_c": profile.signoff_tj_c}
    assert (slack_table(profile, profile.nominal_clock_mhz, 32, 2, **corner) == 31).all()
    table = slack_table(profile, profile.nominal_clock_mhz, 32, 2, **{**corner, **outside})
    assert (table < 31).any()
    assert not profile.in_rated_range(outside.get("tj_c", profile.signoff_tj_c), outside.get("voltage"))


def test_a_die_factor_that_cannot_be_is_refused():
    with pytest.raises(ValueError, match="process factor"):
        slack_table("pynq-z2", 120.0, 4, 0, process=0.0)
    with pytest.raises(ValueError, match="junction temperature"):
        slack_table("pynq-z2", 120.0, 4, 0, tj_c=float("nan"))
