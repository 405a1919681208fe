"""A GEMM selection that matches nothing is a one-line error, never a clean-looking result."""

import copy

import pytest
import torch
from click.testing import CliRunner

from realm_hil.abft.characterization import run_characterization
from realm_hil.abft.characterization_sweep import CharacterizeConfig, CharacterizePoint, Grid, prepare
from realm_hil.campaign.store import CampaignStore
from realm_hil.cli.main import cli
from realm_hil.errors import InputError


@pytest.mark.llm
def test_run_selecting_no_gemm_is_one_line_and_exit_2(tmp_path):
    # perplexity runs whole windows, so every GEMM is prefill: valid syntax, nothing selected
    selection = ["--stages", "decode"]
    args = ["run", "--backend", "reference", "--tokens", "8", "--window", "8", "--clock-mhz", "100",
            "--out", str(tmp_path), *selection]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]  # above it only the model loader's progress bar
    assert "Traceback" not in result.output and "selects none" in last and selection[-1] in last
    assert not (tmp_path / "results.json").exists()


@pytest.fixture(scope="module")
def tiny_opt():
    from transformers import OPTConfig, OPTForCausalLM

    torch.manual_seed(0)
    config = OPTConfig(vocab_size=64, hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4,
                       word_embed_proj_dim=32, max_position_embeddings=64)
    return OPTForCausalLM(config).eval()


def test_characterize_point_that_injects_nothing_is_an_error(tmp_path, tiny_opt):
    # OPT's MLP has no gate projection: a "gate" point would record the clean perplexity as benign
    config = CharacterizeConfig(model="tiny-opt", tokens=16, window=16, components=("o", "gate"),
                                layer_groups={"all": "0-1"}, grid=Grid((8,), (0,)))
    windows = torch.randint(0, 64, (1, 16), generator=torch.Generator().manual_seed(1))
    sweep = prepare(copy.deepcopy(tiny_opt), windows, config)
    with pytest.raises(InputError, match="has no prefill gate GEMM to characterize"):
        run_characterization(config, tmp_path, sweep=sweep)
    assert not list((tmp_path / "points").iterdir())  # nothing bogus recorded


def test_resumed_point_that_injected_nothing_is_an_error(tmp_path, tiny_opt):
    # a sweep recorded before the check (e.g. decode points while every GEMM was taken for prefill)
    config = CharacterizeConfig(model="tiny-opt", tokens=16, window=16, components=("o",),
                                layer_groups={"all": "0-1"}, grid=Grid((8,), (0,)))
    windows = torch.randint(0, 64, (1, 16), generator=torch.Generator().manual_seed(1))
    sweep = prepare(copy.deepcopy(tiny_opt), windows, config)
    store = CampaignStore(tmp_path)
    store.open(config.identity({"all": "0-1"}), resume=False)
    stale = {"ppl": 9.0, "delta": 0.0, "critical": False, "gemms": 0, "clean": 9.0, "shape": [16, 32]}
    store.write_result(CharacterizePoint("o", "all", "0-1", "prefill", 8, 0), stale, 0.1, "an older version")
    with pytest.raises(InputError, match="point o/all=0-1/prefill/8/0: .* no error was injected"):
        run_characterization(config, tmp_path, resume=True, sweep=sweep)
