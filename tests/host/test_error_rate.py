"""`run --error-rate R`: the realm models at a given element error rate on any backend, without the timing model.

Bad rates are one line and exit 2 before any work; a realm-only run injects the given rate (the
measured element error rate is a plausible binomial draw of it, not the timing model's) and its
perplexity equals an independent evaluation of the same faults through the router's fault hook.
"""

import json
import math

import pytest
import torch
from click.testing import CliRunner

from realm_hil.cli.main import cli
from realm_hil.error_models import RealmModel, SeededFaults
from realm_hil.errors import InputError
from realm_hil.experiment import RunConfig
from realm_hil.llm.gemm import GemmRouter
from realm_hil.llm.model import load_model
from realm_hil.llm.offload import W8A8Config, quantize_model
from realm_hil.llm.selection import Selection
from realm_hil.llm.text import load_text, token_windows


class WorkStarted(AssertionError):
    """The run got past its checks and began real work."""


@pytest.fixture
def no_work(monkeypatch):
    def tripwire(*_args, **_kwargs):
        raise WorkStarted("work began before the bad input was refused")

    for target in ("realm_hil.experiment.open_accelerator", "realm_hil.experiment.load_model"):
        monkeypatch.setattr(target, tripwire)


@pytest.mark.parametrize("args, words", [
    (["--error-model", "realm", "--error-rate", "nan"], ["--error-rate", "finite"]),
    (["--error-model", "realm", "--error-rate", "inf"], ["--error-rate", "0<=x<=1"]),
    (["--error-model", "realm", "--error-rate", "-1e-9"], ["--error-rate", "0<=x<=1"]),
    (["--error-model", "realm", "--error-rate", "1.5"], ["--error-rate", "0<=x<=1"]),
    (["--error-rate", "1e-5"], ["realm or realm@B"]),  # only timing: the rate would act on nothing
    (["--error-model", "realm"], ["timing model", "error rate"]),  # no rate to inject without timing
    (["--error-model", "realm", "--error-rate", "1e-5", "--act-scale", "static"], ["--act-scale"]),
])
def test_bad_rates_are_one_line_before_any_work(no_work, args, words):
    result = CliRunner().invoke(cli, ["run", "--backend", "reference", *args])
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("realm-hil: error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("rate", [math.nan, math.inf, -math.inf, -0.1, 1.0 + 1e-12])
def test_run_config_refuses_a_rate_outside_0_1(rate):
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        RunConfig(backend="reference", error_models=["realm"], error_rate=rate)


def test_a_given_rate_frees_realm_from_the_timing_model():
    assert RunConfig(backend="reference", error_models=["realm@22", "realm"], error_rate=0.0).error_models == [
        "realm@22", "realm"]
    assert RunConfig(backend="reference", error_models=["realm", "timing"], error_rate=1.0).error_models == [
        "timing", "realm"]
    with pytest.raises(InputError, match="static-clamped"):
        RunConfig(backend="reference", act_scale="clamped")


def nll_ppl(model, windows) -> float:
    total, count = 0.0, 0
    with torch.no_grad():
        for window in windows:
            out = model(window[None], use_cache=False).logits[0, :-1].double()
            log_probs = out - torch.logsumexp(out, dim=-1, keepdim=True)
            total -= log_probs.gather(1, window[1:, None]).sum().item()
            count += window.numel() - 1
    return math.exp(total / count)


@pytest.mark.llm
@pytest.mark.parametrize("act_scale", ["dynamic", "static-clamped"])
def test_realm_only_run_injects_the_given_rate(tmp_path, act_scale):
    """16 tokens, o and down of layers 0-1, bit 22 at 2 %: one row at the nominal clock, no timing row."""
    rate, seed, bit = 0.02, 3, 22
    result = CliRunner().invoke(cli, [
        "run", "--backend", "twin", "--tokens", "16", "--window", "16", "--layers", "0-1", "--components", "o,down",
        "--error-model", f"realm@{bit}", "--error-rate", str(rate), "--act-scale", act_scale, "--seed", str(seed),
        "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "results.json").read_text())
    (row,) = data["rows"]
    assert row["error_model"] == f"realm@{bit}" and row["clock_mhz"] == 100.0  # the twin's nominal clock
    elements = 2 * 16 * (576 + 576)  # o and down outputs of two layers
    wrong = row["element_error_rate"] * elements
    assert abs(wrong - rate * elements) <= 5 * math.sqrt(elements * rate * (1 - rate))
    assert f"realm at rate {rate:g}" in (tmp_path / "table.txt").read_text()

    loaded = load_model()
    windows = token_windows(loaded.tokenizer, load_text(), 16, 16)
    router = GemmRouter()
    quantize_model(loaded.model, W8A8Config(act_scale=act_scale), router)
    assert data["w8a8_ppl"] == pytest.approx(nll_ppl(loaded.model, windows), rel=1e-4)
    router.selection = Selection.parse("0-1", "o,down")
    router.fault = SeededFaults(RealmModel(rate, bit), seed)
    assert data["rows"][0]["ppl"] == pytest.approx(nll_ppl(loaded.model, windows), rel=1e-4)
    assert round(wrong) == router.fault.injected
