"""`realm-hil bench llm`: every variant runs what it names (no timing thresholds: the machine is shared)."""

import json

import pytest
import torch
from click.testing import CliRunner

from realm_hil.cli.main import cli
from realm_hil.timing.slack import first_error_clock

NAMES = ["w8a8", "reference", "flip-1e-06", "flip-1e-05", "twin-onset", "twin-heavy"]
TOKENS = 32
# SmolLM2-135M: 30 layers of seven projections whose outputs are 576 (q, o, down), 192 (k, v) and 1536 (gate, up)
GEMMS = 30 * 7
ELEMENTS = TOKENS * 30 * (2 * 576 + 2 * 192 + 2 * 1536 + 576)


@pytest.mark.llm
def test_bench_llm_runs_every_variant():
    threads = torch.get_num_threads()
    result = CliRunner().invoke(cli, ["bench", "llm", "--tokens", str(TOKENS), "--rounds", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert torch.get_num_threads() == threads  # the benchmark's one thread does not leak out
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == NAMES
    by = {r["name"]: r for r in rows}
    for r in rows:
        assert r["seconds"] > 0 and r["ratio"] > 0 and r["cpu_seconds"] > 0
        assert (r["rounds"], r["threads"], r["tokens"]) == (2, 1, TOKENS)
    assert by["w8a8"]["ratio"] == 1.0 and "gemms" not in by["w8a8"]  # the floor offloads nothing
    for name in NAMES[1:]:
        assert by[name]["gemms"] == GEMMS
    assert by["reference"]["elements_wrong"] == 0
    # the flips land at their rates: a Poisson count with mean rate x elements (5 and 50 here)
    for name, rate in (("flip-1e-06", 1e-6), ("flip-1e-05", 1e-5)):
        expected = rate * ELEMENTS
        assert (by[name]["rate"], by[name]["bit"]) == (rate, 30)
        assert 0 < by[name]["elements_wrong"] and expected / 4 <= by[name]["elements_wrong"] <= 4 * expected + 4
    # the twin errs: a few PEs just past the first error clock, every PE at the heavy overclock
    onset, heavy = by["twin-onset"], by["twin-heavy"]
    assert onset["clock_mhz"] == round(first_error_clock("pynq-z2", 8, 0) + 2.0, 3)
    assert 1 <= onset["pes_can_err"] < 64 and onset["elements_wrong"] > 0
    assert heavy["pes_can_err"] == 64 and heavy["elements_wrong"] > 10 * onset["elements_wrong"]


def test_bench_llm_refuses_bad_settings():
    result = CliRunner().invoke(cli, ["bench", "llm", "--rounds", "0"])
    assert result.exit_code == 2 and "--rounds" in result.output
