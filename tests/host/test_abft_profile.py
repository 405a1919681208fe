"""ABFT profile files: schema validation, save/load round trip, the policy each mode gets."""

import copy
import re

import pytest
import yaml

from realm_hil.abft.abft_profile import (
    PROFILE_DIR,
    AbftProfile,
    list_abft_profiles,
    load_abft_profile,
    profile_from_dict,
)
from realm_hil.stats import PolicyConfig


def valid() -> dict:
    return {
        "schema_version": 1,
        "model": "SmolLM2-135M-Instruct",
        "array_n": 8,
        "tolerance": 2.0,
        "classes": {
            "sensitive": {
                "components": ["o", "down"],
                "alpha": -0.5,
                "beta": 25.0,
                "freq_min": 1,
                "boundary": {"slope": 1.5, "intercept": -25.0},
            },
            "resilient": {
                "components": ["q", "k", "v", "gate", "up"],
                "alpha": 0.25,
                "beta": 20.5,
                "freq_min": 2,
            },
        },
        "approx": {"o": [1000, 2000, 3000], "q": [5, 6, 7]},
        "provenance": {
            "text": "gpl3",
            "tokens": 512,
            "seed": 0,
            "date": "2026-01-01",
            "grid": "msd=8/12,freq=0",
        },
    }


def test_shipped_profile_loads_and_round_trips(tmp_path):
    assert "smollm2-135m" in list_abft_profiles()
    profile = load_abft_profile("smollm2-135m")
    assert profile.class_of("o") == "sensitive"
    profile.save(tmp_path / "p.yaml")
    assert load_abft_profile(tmp_path / "p.yaml") == profile
    assert load_abft_profile(profile) is profile
    assert (PROFILE_DIR / "smollm2-135m.yaml").is_file()


def test_round_trip_keeps_every_field(tmp_path):
    profile = profile_from_dict(valid())
    profile.save(tmp_path / "p.yaml")
    again = load_abft_profile(str(tmp_path / "p.yaml"))
    assert again == profile
    assert again.to_dict() == valid()


def test_unquoted_yaml_date_is_accepted(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(valid()).replace("'2026-01-01'", "2026-01-01"))
    assert load_abft_profile(path).provenance.date == "2026-01-01"


def mutate(path: str, value):
    raw = copy.deepcopy(valid())
    *parents, leaf = path.split(".")
    node = raw
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[leaf]
    else:
        node[leaf] = value
    return raw


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("schema_version", 3, "schema_version 3 is not supported"),
        ("model", KeyError, "missing field(s) model"),
        ("extra", 1, "unknown field(s) extra"),
        ("tolerance", 0, "tolerance must be a positive"),
        ("tolerance", "big", "tolerance must be a finite number"),
        ("array_n", 8.0, "array_n must be an integer"),
        ("classes.resilient", KeyError, "classes: missing field(s) resilient"),
        ("classes.fragile", {}, "classes: unknown field(s) fragile"),
        ("classes.sensitive.components", ["o", "q"], "'q' is in both classes"),
        ("classes.sensitive.components", ["o_proj"], "unknown component 'o_proj'"),
        ("classes.sensitive.components", [], "components must not be empty"),
        ("classes.sensitive.alpha", 200.0, "does not fit signed Q8.8"),
        ("classes.sensitive.freq_min", 9, "can never be reached"),
        ("classes.sensitive.freq_min", True, "freq_min must be an integer"),
        ("classes.sensitive.boundary", {"slope": 1.0}, "boundary: missing field(s) intercept"),
        ("approx.o", [1, -2], "approx.o[1] must be >= 0"),
        ("approx.lm_head", [1], "unknown component 'lm_head'"),
        ("approx.o", 5, "approx.o must be a list"),
        ("provenance.seed", KeyError, "provenance: missing field(s) seed"),
        ("provenance.text", "", "provenance.text must be a non-empty string"),
    ],
)
def test_validation_names_the_problem(path, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        profile_from_dict(mutate(path, value))


def test_schema_2_records_the_metric_and_schema_1_reads_as_ppl(tmp_path):
    """A profile fitted before metrics existed (schema 1) was fitted on perplexity; schema 2 names its metric."""
    assert profile_from_dict(valid()).provenance.metric == "ppl"
    with pytest.raises(ValueError, match=re.escape("provenance: unknown field(s) metric")):
        profile_from_dict(mutate("provenance.metric", "top1"))  # schema 1 has no metric field
    v2 = {**mutate("provenance.metric", "task:gpl3_mc"), "schema_version": 2}
    profile = profile_from_dict(v2)
    assert profile.provenance.metric == "task:gpl3_mc"
    profile.save(tmp_path / "p.yaml")
    assert load_abft_profile(tmp_path / "p.yaml") == profile
    assert "schema 2" in (tmp_path / "p.yaml").read_text().splitlines()[0]
    del v2["provenance"]["metric"]
    with pytest.raises(ValueError, match=re.escape("provenance: missing field(s) metric")):
        profile_from_dict(v2)
    for bad in ("accuracy", "task:", "top1:x"):
        with pytest.raises(ValueError, match="provenance.metric must be ppl, top1 or task:NAME"):
            profile_from_dict({**mutate("provenance.metric", bad), "schema_version": 2})


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="unknown ABFT profile 'nope'; available: .*smollm2-135m"):
        load_abft_profile("nope")
    with pytest.raises(ValueError, match="does not exist"):
        load_abft_profile(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: [1\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_abft_profile(bad)
    bad.write_text(yaml.safe_dump(mutate("model", KeyError)))
    with pytest.raises(ValueError, match=f"invalid ABFT profile {bad}: profile: missing field"):
        load_abft_profile(bad)


def test_policy_for_each_mode():
    profile = profile_from_dict(valid())
    assert profile.policy_for("off", 0, "o") == PolicyConfig("off")
    assert profile.policy_for("classic", 2, "q") == PolicyConfig("classic")
    assert profile.policy_for("statistical", 0, "down") == PolicyConfig("statistical", -128, 6400, freq_min=1)
    assert profile.policy_for("statistical", 1, "gate") == PolicyConfig("statistical", 64, 5248, freq_min=2)
    assert profile.policy_for("approx", 1, "o") == PolicyConfig("approx", msd_thresh=2000)
    assert profile.policy_for("approx", 2, "q") == PolicyConfig("approx", msd_thresh=7)


def test_policy_for_rejects_what_the_profile_does_not_cover():
    profile = profile_from_dict(valid())
    with pytest.raises(ValueError, match="policy mode must be one of"):
        profile.policy_for("recompute", 0, "o")
    with pytest.raises(ValueError, match="'qk' is not classified"):
        profile.policy_for("statistical", 0, "qk")
    with pytest.raises(ValueError, match="no approx thresholds for 'down'"):
        profile.policy_for("approx", 0, "down")
    with pytest.raises(ValueError, match="layer 3 out of range"):
        profile.policy_for("approx", 3, "o")


def test_profile_built_in_code_is_validated_too():
    good = profile_from_dict(valid())
    with pytest.raises(ValueError, match="classes must be exactly"):
        AbftProfile(good.model, 8, 1.0, {"sensitive": good.classes["sensitive"]}, {}, good.provenance)
