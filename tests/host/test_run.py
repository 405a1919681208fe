"""The main job: sim logits equal the reference's bit for bit; bad input is one line and exit 2."""

import json
import math

import pytest
import torch
from click.testing import CliRunner

import realm_hil
from realm_hil.cli.main import cli
from realm_hil.errors import InputError
from realm_hil.experiment import RunConfig
from realm_hil.llm.gemm import GemmRouter
from realm_hil.llm.model import load_model
from realm_hil.llm.offload import W8A8Config, quantize_model
from realm_hil.llm.perplexity import logits, perplexity
from realm_hil.llm.text import load_text, token_windows


@pytest.fixture(scope="module")
def quantized():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    loaded = load_model()
    router = GemmRouter()
    quantize_model(loaded.model, W8A8Config(), router)
    windows = token_windows(loaded.tokenizer, load_text(), 12, 12)
    yield loaded.model, router, windows
    torch.set_num_threads(threads)


@pytest.mark.llm
@pytest.mark.sim
def test_sim_logits_bit_identical_to_reference(quantized):
    model, router, windows = quantized
    results = {}
    for kind in ("reference", "sim"):
        with realm_hil.open_accelerator(kind) as acc:
            router.backend = acc
            results[kind] = (logits(model, windows[0]), perplexity(model, windows).ppl)
    assert torch.equal(results["sim"][0], results["reference"][0])
    assert results["sim"][1] == results["reference"][1]


@pytest.mark.parametrize("args, message", [
    (["--model", "/nonexistent/model"], "not"),
    (["--text", "/nonexistent/text.txt"], "text file not found"),
    (["--clock-mhz", "-5", "--backend", "reference"], "clock"),
    (["--abft", "sometimes"], "choose from"),
    (["--dataset", "wikitext2"], "WikiText-2"),
    (["--emulate-checks"], "emulated checksums need the sim or twin backend"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = CliRunner().invoke(cli, ["run", "--backend", "reference", "--tokens", "8", "--window", "8", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("options, message", [
    ({"clocks_mhz": [math.inf]}, "finite"),
    ({"clocks_mhz": [100.0, math.nan]}, "finite"),
    ({"clocks_mhz": [0.0]}, "positive"),
    ({"layers": "3-1"}, "bad layer range"),
    ({"components": "lm_head"}, "lm_head stays float"),
    ({"tokens": 8, "window": 16}, "16-token window"),
    ({"text": "/nonexistent/text.txt"}, "text file not found"),
    ({"manifest": "bitstreams/manifest.json"}, "board name or manifest"),
    ({"seed": -1}, "seed at least 0"),
])
def test_run_config_refuses_what_cannot_run(options, message):
    with pytest.raises(InputError, match=message):
        RunConfig(backend="reference", **options)
    assert RunConfig(backend="reference", tokens=32).window == 32  # the default window shrinks to fit


def test_board_without_board_is_one_line_and_exit_2():
    result = CliRunner().invoke(cli, ["run", "--board"])
    assert result.exit_code == 2
    assert "no PYNQ board found" in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.llm
def test_run_writes_results_and_table(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--backend", "twin", "--tokens", "16", "--window", "16",
                                      "--clock-mhz", "100", "--layers", "0-1", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["rows"][0]["clock_mhz"] == 100 and data["rows"][0]["delta_w8a8"] == 0
    assert not data["config"]["emulate_checks"]
    assert (tmp_path / "table.txt").read_text().startswith("SmolLM2")


@pytest.mark.llm
def test_run_with_emulated_checks_is_exact_at_nominal(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--backend", "twin", "--tokens", "16", "--window", "16",
                                      "--clock-mhz", "100", "--layers", "0", "--emulate-checks",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["config"]["emulate_checks"]
    assert data["rows"][0]["delta_w8a8"] == 0 and data["rows"][0]["tiles_err"] == 0
    assert "checksums overclocked too" in (tmp_path / "table.txt").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json", "table.txt"]
