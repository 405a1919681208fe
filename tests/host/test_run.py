"""The main job: sim logits equal the reference's bit for bit; the twin's figures equal an independent
oracle's at clocks where errors occur; bad input is one line and exit 2."""

import json
import math
from collections import Counter

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from oracles import int32_matmul, tiles_of, wrap_int32

import realm_hil
from realm_hil.cli.main import cli
from realm_hil.errors import InputError
from realm_hil.experiment import RunConfig
from realm_hil.gemm_call import GemmResult
from realm_hil.llm.gemm import GemmRouter
from realm_hil.llm.model import load_model
from realm_hil.llm.offload import W8A8Config, quantize_model
from realm_hil.llm.perplexity import logits, perplexity
from realm_hil.llm.selection import Selection
from realm_hil.llm.text import load_text, token_windows
from realm_hil.timing.emulation import timed_checksums, timed_dot
from realm_hil.timing.slack import check_slack_table, slack_table


@pytest.fixture(scope="module")
def quantized(quantized):
    """The shared quantized model (tests/host/conftest.py) with one 12-token window."""
    loaded, router = quantized
    return loaded.model, router, token_windows(loaded.tokenizer, load_text(), 12, 12)


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


PROFILE, SEED, N = "pynq-z2", 0, 8


class TimingOracle:
    """The offloaded GEMMs as the numpy timing oracle computes them, counted and recovered independently.

    Each result is timing.emulation.timed_dot under the pynq-z2 slack table (output (m, j) on
    PE (m % 8, j % 8)); the exact one is int64 arithmetic. A tile is flagged when a column or row
    deviation is nonzero: the sums of its error matrix, or with overclocked checksums what
    timing.emulation.timed_checksums computes. With classic=True flagged tiles take their exact
    values, as a recomputation at the nominal clock gives them.
    """

    name = "timing-oracle"

    def __init__(self, clock_mhz: float, checks: bool, classic: bool) -> None:
        self.slack = slack_table(PROFILE, clock_mhz, N, SEED)
        self.check_slack = check_slack_table(PROFILE, clock_mhz, N, SEED) if checks else None
        self.classic = classic
        self.counts = Counter()

    def gemm(self, x: np.ndarray, w: np.ndarray, *, site=None) -> GemmResult:
        m, n = x.shape[0], w.shape[1]
        exact = int32_matmul(x, w)
        y = timed_dot(x[:, None, :], w.T[None, :, :], self.slack[np.arange(m)[:, None] % N, np.arange(n) % N])
        if self.check_slack is None:
            err = tiles_of(y.astype(np.int64) - exact, N)
            d, e = wrap_int32(err.sum(axis=1)), wrap_int32(err.sum(axis=2))
        else:
            d, e = timed_checksums(*operand_tiles(x, w), tiles_of(y, N), self.check_slack)
        flagged = (d != 0).any(axis=1) | (e != 0).any(axis=1)
        wrong = tiles_of(y != exact, N)
        wrong_tile = wrong.any(axis=(1, 2))
        self.counts.update(gemms=1, tiles=len(flagged), tiles_err=int(flagged.sum()), elements=y.size,
                           wrong=int(wrong.sum()), false_alarms=int((flagged & ~wrong_tile).sum()),
                           missed=int((~flagged & wrong_tile).sum()))
        if not self.classic:
            self.counts.update(residual=int(wrong.sum()))
            return GemmResult(y, None)
        self.counts.update(residual=int(wrong[~flagged].sum()))
        grid = flagged.reshape(-(-m // N), -(-n // N))
        return GemmResult(np.where(np.kron(grid, np.ones((N, N), bool))[:m, :n], exact, y), None)


def operand_tiles(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per output tile (row-major) its X rows (T, N, K) and W columns (T, K, N), zero-padded."""
    tiles_m, tiles_n, k = -(-x.shape[0] // N), -(-w.shape[1] // N), x.shape[1]
    xp = np.zeros((tiles_m * N, k), np.int8)
    xp[: x.shape[0]] = x
    wp = np.zeros((k, tiles_n * N), np.int8)
    wp[:, : w.shape[1]] = w
    x_rows = np.repeat(xp.reshape(tiles_m, N, k), tiles_n, axis=0)
    w_cols = np.tile(wp.reshape(k, tiles_n, N).transpose(1, 0, 2), (tiles_m, 1, 1))
    return x_rows, w_cols


def nll_ppl(model, windows) -> float:
    """Perplexity from the logits: mean over all predicted tokens of -log softmax at the next token."""
    total, count = 0.0, 0
    with torch.no_grad():
        for window in windows:
            out = model(window[None], use_cache=False).logits[0, :-1].double()
            log_probs = out - torch.logsumexp(out, dim=-1, keepdim=True)
            total -= log_probs.gather(1, window[1:, None]).sum().item()
            count += window.numel() - 1
    return math.exp(total / count)


def oracle_rows(tokens: int, layers: str, components: str, clocks, checks: bool) -> tuple[float, float, dict]:
    """float and W8A8 perplexity, and per (clock, policy) the oracle's counts and perplexity."""
    loaded = load_model()
    windows = token_windows(loaded.tokenizer, load_text(), tokens, tokens)
    float_ppl = nll_ppl(loaded.model, windows)
    router = GemmRouter()
    quantize_model(loaded.model, W8A8Config(), router)
    w8a8_ppl = nll_ppl(loaded.model, windows)
    router.selection = Selection.parse(layers, components, num_layers=loaded.model.config.num_hidden_layers)
    rows = {}
    for clock in clocks:
        for policy in ("none", "classic"):
            router.backend = TimingOracle(clock, checks, policy == "classic")
            ppl = nll_ppl(loaded.model, windows)
            rows[clock, policy] = {**router.backend.counts, "ppl": ppl}
    return float_ppl, w8a8_ppl, rows


def check_rows(data: dict, expected: tuple[float, float, dict]) -> None:
    """The run's reported figures against the oracle's, row by row."""
    float_ppl, w8a8_ppl, rows = expected
    assert data["float_ppl"] == pytest.approx(float_ppl, rel=1e-4)
    assert data["w8a8_ppl"] == pytest.approx(w8a8_ppl, rel=1e-4)
    assert [(r["clock_mhz"], r["policy"]) for r in data["rows"]] == list(rows)
    for row in data["rows"]:
        want = rows[row["clock_mhz"], row["policy"]]
        classic = row["policy"] == "classic"
        assert row["gemms"] == want["gemms"] and row["tiles"] == want["tiles"]
        assert row["element_error_rate"] == want["wrong"] / want["elements"]
        assert row["tiles_err"] == want["tiles_err"]
        assert row["tiles_recover"] == row["tiles_recomputed"] == (want["tiles_err"] if classic else 0)
        assert row["residual_errors"] == want["residual"]
        assert row["ppl"] == pytest.approx(want["ppl"], rel=1e-4)
        assert row["delta_w8a8"] == row["ppl"] - data["w8a8_ppl"]


@pytest.mark.llm
def test_run_writes_results_and_table(tmp_path):
    """At 122.3 MHz (pynq-z2 twin; 116 before issue 15, x 1.0542), errors in layer 0 reach layer 1's
    operands without protection; every reported count and perplexity matches the numpy timing oracle's,
    and classic ABFT leaves no error and the W8A8 perplexity exactly."""
    args = ["--tokens", "16", "--window", "16", "--clock-mhz", "122.3", "--layers", "0-1", "--components", "o"]
    result = CliRunner().invoke(cli, ["run", "--backend", "twin", *args, "--abft", "none,classic",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "results.json").read_text())
    assert not data["config"]["emulate_checks"]
    assert (tmp_path / "table.txt").read_text().startswith("SmolLM2")
    expected = oracle_rows(16, "0-1", "o", [122.3], checks=False)
    check_rows(data, expected)
    none, classic = data["rows"]
    assert none["residual_errors"] > 0 and none["delta_w8a8"] > 0
    assert classic["residual_errors"] == 0 and classic["delta_w8a8"] == 0 and classic["tiles_recomputed"] > 0


@pytest.mark.llm
def test_run_with_emulated_checks_reports_false_alarms_and_misses(tmp_path):
    """With overclocked checksums at 120.2 MHz some flagged tiles are exact (false alarms) and at
    168.7 MHz (114 and 160 before issue 15, x 1.0542), every bit stale, every wrong tile passes
    (missed): the run's flags and what classic ABFT lets through match the checksum oracle, and so do
    the perplexities."""
    result = CliRunner().invoke(cli, ["run", "--backend", "twin", "--tokens", "16", "--window", "16",
                                      "--clock-mhz", "120.2", "--clock-mhz", "168.7", "--layers", "0",
                                      "--components", "o", "--abft", "none,classic", "--emulate-checks",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["config"]["emulate_checks"]
    assert "checksums overclocked too" in (tmp_path / "table.txt").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json", "table.txt"]
    expected = oracle_rows(16, "0", "o", [120.2, 168.7], checks=True)
    check_rows(data, expected)
    oracle = expected[2]
    assert oracle[120.2, "classic"]["false_alarms"] > 0 and oracle[120.2, "classic"]["missed"] == 0
    assert oracle[168.7, "classic"]["missed"] == oracle[168.7, "classic"]["tiles"]
    rows = {(r["clock_mhz"], r["policy"]): r for r in data["rows"]}
    assert rows[120.2, "classic"]["residual_errors"] == 0 and rows[120.2, "classic"]["delta_w8a8"] == 0
    assert rows[168.7, "classic"]["residual_errors"] == rows[168.7, "none"]["residual_errors"] > 0
