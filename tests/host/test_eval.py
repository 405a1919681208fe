"""`eval`: the project's own task (gpl3_task.py) through the real lm-evaluation-harness, on the reference and
twin backends. The oracle is an independent loglikelihood ranking of each item's choices by the same quantized
model, its GEMMs on the same backend at the same clock, written here without the harness."""

import json

import pytest
from click.testing import CliRunner
from gpl3_task import GEN_TASK, MC_TASK, accuracy, ranking, write_task

import realm_hil
from realm_hil.cli.main import cli
from realm_hil.experiment import RunConfig
from realm_hil.llm.gemm import TorchIntMM
from realm_hil.llm.selection import Selection
from realm_hil.task_eval import EvalConfig, run_eval

CLOCK = 116.0  # pynq-z2 twin: errors in layers 0-1 change the model's answers
LAYERS, COMPONENTS = "0-1", "linear"


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gpl3_task")
    mc_items, gen_items = write_task(directory, mc=20, gen=4)
    return directory, mc_items, gen_items


@pytest.mark.llm
def test_twin_task_accuracy_under_errors_equals_an_independent_ranking(task, quantized):
    """At 116 MHz with layers 0-1 on the twin, unprotected errors change answers; the harness's accuracy equals
    the ranking by hand under the same errors, and classic ABFT restores the error-free accuracy exactly."""
    directory, mc_items, _ = task
    loaded, router = quantized
    config = EvalConfig(RunConfig(backend="twin", clocks_mhz=[CLOCK], policies=["none", "classic"], layers=LAYERS,
                                  components=COMPONENTS), [MC_TASK, GEN_TASK], str(directory))
    report = run_eval(config)

    router.backend = TorchIntMM()
    clean = ranking(loaded, mc_items)
    with realm_hil.open_accelerator("twin") as acc:
        acc.set_clock(CLOCK)
        router.selection = Selection.parse(LAYERS, COMPONENTS, "all", num_layers=loaded.model.config.num_hidden_layers)
        router.backend = acc
        try:
            erring = ranking(loaded, mc_items)
        finally:
            router.backend = TorchIntMM()
            router.selection = Selection.parse()
    assert erring != clean  # the errors changed some answers: the comparison below is not the trivial one

    assert report.w8a8_scores.scores[MC_TASK]["acc"] == accuracy(clean, mc_items)
    assert report.w8a8_scores.samples == {MC_TASK: 20, GEN_TASK: 4}
    assert report.w8a8_scores.scores[GEN_TASK]["exact_match,strip"] > 0  # the model copies most endings
    none, classic = report.rows
    assert (none.policy, classic.policy) == ("none", "classic")
    assert none.tiles_err > 0 and none.residual_errors > 0
    assert none.scores[MC_TASK]["acc"] == accuracy(erring, mc_items)
    assert none.delta_w8a8[MC_TASK]["acc"] == accuracy(erring, mc_items) - accuracy(clean, mc_items)
    assert classic.residual_errors == 0 and classic.tiles_recomputed > 0
    assert classic.scores == report.w8a8_scores.scores
    assert "gpl3_mc acc" in report.table()


@pytest.mark.llm
def test_eval_command_on_the_reference_backend(task, quantized, tmp_path):
    """The command through the harness on the exact backend: its W8A8 and overclocked scores are the ranking's,
    and it writes the table and the JSON of `run`'s style."""
    directory, mc_items, _ = task
    loaded, router = quantized
    result = CliRunner().invoke(cli, ["eval", "--backend", "reference", "--tasks", MC_TASK,
                                      "--include-path", str(directory), "--limit", "8", "--clock-mhz", "200",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "results.json").read_text())
    router.backend = TorchIntMM()
    want = accuracy(ranking(loaded, mc_items[:8]), mc_items[:8])
    assert data["w8a8_scores"]["scores"][MC_TASK]["acc"] == want
    [row] = data["rows"]
    assert (row["clock_mhz"], row["policy"], row["tiles_err"]) == (200.0, "none", 0)
    assert row["scores"][MC_TASK]["acc"] == want and row["delta_w8a8"][MC_TASK]["acc"] == 0
    assert (tmp_path / "table.txt").read_text().startswith("SmolLM2")


@pytest.mark.llm
def test_a_task_whose_data_set_is_not_cached_is_one_line(tmp_path):
    directory = tmp_path / "tasks"
    directory.mkdir()
    (directory / "uncached.yaml").write_text(
        "task: uncached_task\ndataset_path: realm-hil-tests/never-cached\ntest_split: test\n"
        "output_type: multiple_choice\ndoc_to_text: '{{q}}'\ndoc_to_choice: '{{c}}'\ndoc_to_target: 0\n")
    result = CliRunner().invoke(cli, ["eval", "--backend", "reference", "--tasks", "uncached_task",
                                      "--include-path", str(directory)])
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    assert "not in the local Hugging Face cache" in line and "copy ~/.cache/huggingface" in line
    result = CliRunner().invoke(cli, ["eval", "--backend", "reference", "--tasks", "no_such_task"])
    assert result.exit_code == 2 and "unknown lm-evaluation-harness task(s) no_such_task" in result.output
