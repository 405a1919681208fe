"""Critical-region characterization: error injection, boundary fit, tile rule, resumable sweep, CLI."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from realm_hil.abft.abft_profile import Boundary, load_abft_profile
from realm_hil.abft.boundary_fit import fit_boundary, fit_classes, tile_alpha_beta, translate
from realm_hil.abft.characterization import run_characterization
from realm_hil.abft.characterization_sweep import (
    CharacterizeConfig,
    Grid,
    PointResult,
    SumDeviation,
    _point_seed,
    isotonic,
    label_critical,
    prepare,
)
from realm_hil.abft.component_classes import Classification, classify
from realm_hil.errors import InputError
from realm_hil.llm.gemm import GemmSite
from realm_hil.llm.selection import Selection
from realm_hil.stats import tile_stats

SITE = GemmSite(0, "o", "prefill")


def test_grid_parse_and_feasibility():
    grid = Grid.parse("msd=0:40:20,freq=0/35")
    assert grid.log2_msd == (0, 20, 40) and grid.log2_freq == (0, 35)
    # MSD / freq must lie in [1, 2^31]: an INT32 deviation is at most 2^31
    assert list(grid.points()) == [(0, 0), (20, 0), (40, 35)]
    assert Grid.parse(grid.spec()) == grid
    for bad in ("msd=1:4:0,freq=0", "msd=8", "msd=a,freq=1", "size=1,freq=1", "msd=70,freq=0"):
        with pytest.raises(ValueError):
            Grid.parse(bad)


@pytest.mark.parametrize("spec, message", [
    ("msd=0:1000000000000:1,freq=0", r"\[0, 63\]"),  # refused from its bounds, never expanded
    ("msd=10:2:2,freq=0", "start <= stop"),
    ("msd=40/50,freq=0/2", "no feasible point"),  # every MSD above freq x 2^31
])
def test_grid_bounds_are_checked_before_the_axis_is_built(spec, message):
    with pytest.raises(InputError, match=message):
        Grid.parse(spec)


def test_sum_deviation_places_exact_sum_with_equal_magnitudes():
    acc = np.zeros((64, 48), np.int32)
    hook = SumDeviation(msd=1000, freq=7, seed=3)
    out = hook(acc.copy(), SITE)
    nz = out[out != 0]
    assert nz.size == 7 and np.abs(nz).sum() == 1000
    assert set(np.abs(nz)) <= {142, 143}  # 1000 = 6 x 143 + 1 x 142: equal split, remainder spread
    again = SumDeviation(msd=1000, freq=7, seed=3)(acc.copy(), SITE)
    assert np.array_equal(out, again)
    assert hook.gemms == 1


def test_sum_deviation_wraps_like_the_int32_accumulator():
    acc = np.full((1, 1), 2**31 - 1, np.int32)
    out = SumDeviation(msd=2**31, freq=1, seed=0)(acc, SITE)
    assert (int(out[0, 0]) - (2**31 - 1)) % 2**32 == 2**31
    with pytest.raises(ValueError, match="freq <= msd"):
        SumDeviation(msd=2**32 + 1, freq=1, seed=0)
    with pytest.raises(ValueError, match="do not fit"):
        SumDeviation(msd=8, freq=4, seed=0)(np.zeros((1, 2), np.int32), SITE)


def synthetic(slope: float, intercept: float, grid: Grid, component: str = "o") -> list[PointResult]:
    return [
        PointResult(component, "all", "prefill", m, f, 0.0, 10.0 * crit, crit, 1, 0.0)
        for m, f in grid.points()
        for crit in [f <= slope * m + intercept]
    ]


@pytest.mark.parametrize(("slope", "intercept"), [(1.5, -25.0), (0.8, -6.0), (2.0, -40.0)])
def test_fit_recovers_a_known_boundary(slope, intercept):
    points = synthetic(slope, intercept, Grid(tuple(range(4, 41, 2)), tuple(range(0, 15))))
    fit = fit_boundary(
        [p.log2_msd for p in points], [p.log2_freq for p in points], [p.critical for p in points]
    )
    assert fit.boundary.slope == pytest.approx(slope, abs=0.15)
    # every critical point on the critical side, and the line within one grid step of the truth
    assert all(fit.is_critical(p.log2_msd, p.log2_freq) for p in points if p.critical)
    assert fit.benign_on_critical_side <= 0.03 * len(points)
    mid = 30.0
    assert fit.boundary.slope * mid + fit.boundary.intercept == pytest.approx(
        slope * mid + intercept, abs=1.5
    )


def test_fit_rejects_one_sided_data():
    with pytest.raises(ValueError, match="no critical point"):
        fit_boundary([1, 2], [0, 0], [False, False])
    with pytest.raises(ValueError, match="every point is critical"):
        fit_boundary([1, 2], [0, 0], [True, True])


def test_tile_rule_catches_critical_points_on_the_real_gemm_shape():
    assert tile_alpha_beta(Boundary(1.5, -25.0)) == (-0.5, 25.0)
    grid = Grid(tuple(range(8, 37, 2)), tuple(range(0, 13, 2)))
    points = synthetic(1.5, -25.0, grid)
    fit = fit_boundary(
        [p.log2_msd for p in points], [p.log2_freq for p in points], [p.critical for p in points]
    )
    rule = translate(fit, points, {"o": (128, 576)}, array_n=8)
    assert rule.recall == 1.0 and rule.freq_min == 1
    assert rule.alpha == pytest.approx(1 - fit.boundary.slope, abs=1 / 256)
    assert rule.beta <= -fit.boundary.intercept + 1 / 256
    # the rule is not "recover everything": most benign points pass untouched
    assert rule.benign_flag_rate < 0.5
    # beta is lowered because up to 2^12 critical errors spread one per tile: each tile then holds a
    # smaller error than a lone critical one; the derivation bounds that by (a - 1) / a * log2 F
    a = fit.boundary.slope
    assert 0 < rule.beta_margin <= (a - 1) / a * 12 + 0.25
    # a lone error trips the tile rule from magnitude 2^(beta / (1 - alpha)) on
    lone = rule.beta / (1 - rule.alpha)
    d = np.zeros((2, 8), np.int32)
    d[0, 3], d[1, 3] = 2 ** math.floor(lone - 0.5), 2 ** math.ceil(lone + 0.5)
    assert list(tile_stats(d, np.zeros_like(d), rule.policy()).recover) == [False, True]


def test_isotonic_fit_is_the_least_squares_monotone_row():
    assert isotonic([1.0, 3.0, 2.0, 4.0]) == [1.0, 2.5, 2.5, 4.0]
    assert isotonic([5.0, 1.0, 0.0]) == [2.0, 2.0, 2.0]
    assert isotonic([0.0, 1.0]) == [0.0, 1.0]


def test_labels_ignore_an_isolated_noisy_point_and_fill_a_dip():
    deltas = {10: 0.1, 12: 0.9, 14: 0.0, 16: 0.1, 18: 30.0, 20: 0.2, 22: 500.0, 24: math.inf}
    points = [PointResult("o", "all", "prefill", m, 0, 0.0, d, False, 1, 0.0) for m, d in deltas.items()]
    labelled = {p.log2_msd: p.critical for p in label_critical(points, 0.5)}
    # the lone 0.9 among harmless neighbours is noise; the 0.2 between two large deltas is a dip
    assert labelled == {10: False, 12: False, 14: False, 16: False, 18: True, 20: True, 22: True, 24: True}


def test_resilient_class_gets_a_frequency_floor_and_gemm_gate():
    """Critical only with many large errors: the fit finds the floor and the gate lets none through."""
    grid = Grid(tuple(range(8, 37, 2)), tuple(range(0, 13, 2)))
    points = [
        PointResult("q", "all", "prefill", m, f, 0.0, 10.0 * crit, crit, 1, 0.0)
        for m, f in grid.points()
        for crit in [6 <= f <= 1.5 * m - 25]
    ]
    split = Classification({"q": 1.0}, {"q": 0.0}, {"sensitive": (), "resilient": ("q",)}, ("q",))
    fit = fit_classes(points, split, {"q": (128, 576)}, array_n=8)["resilient"]
    assert fit.fit.floor == 6 and fit.rule.gemm_freq_min == 64
    assert all(fit.fit.is_critical(p.log2_msd, p.log2_freq) == p.critical for p in points if p.critical)
    assert not any(fit.fit.is_critical(p.log2_msd, p.log2_freq) for p in points if p.log2_freq < 6)
    assert fit.rule.recall == 1.0
    # lone huge errors are below the gate: those benign points are never recovered
    assert fit.rule.benign_flag_rate < 0.5


def test_classify_splits_at_the_largest_gap():
    grid = Grid(tuple(range(8, 41, 4)), (0, 6))
    points = (
        synthetic(1.0, -16.0, grid, "o")
        + synthetic(1.0, -18.0, grid, "down")
        + synthetic(1.0, -30.0, grid, "q")
        + synthetic(1.0, -100.0, grid, "up")
    )
    split = classify(points, ["q", "k", "o", "up", "down", "sv"])
    assert split.classes["sensitive"] == ("o", "down")
    # measured ones by onset, then the unmeasured in the paper's class
    assert split.classes["resilient"] == ("q", "up", "k", "sv")
    assert math.isinf(split.onsets["up"])


@pytest.fixture(scope="module")
def tiny_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture
def tiny_sweep(tiny_model):
    import copy

    config = CharacterizeConfig(
        model="tiny",
        tokens=32,
        window=16,
        components=("o", "q"),
        grid=Grid((4, 16, 28), (0, 2)),
        tolerance=0.05,
    )
    windows = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(1))
    return config, prepare(copy.deepcopy(tiny_model), windows, config)


class Interrupted(Exception):
    pass


def _point_files(directory):
    return sorted((directory / "points").iterdir())


def test_interrupted_sweep_resumes_to_the_same_points(tmp_path, tiny_sweep):
    config, sweep = tiny_sweep
    full = run_characterization(config, tmp_path / "full", sweep=sweep)

    def stop_after(k):
        def progress(p):
            if p.done == k:
                raise Interrupted

        return progress

    with pytest.raises(Interrupted):
        run_characterization(config, tmp_path / "cut", progress=stop_after(5), sweep=sweep)
    with pytest.raises(ValueError, match="already exists"):
        run_characterization(config, tmp_path / "cut", sweep=sweep)
    finished = {path.name: path.stat().st_mtime_ns for path in _point_files(tmp_path / "cut")}
    assert len(finished) == 5
    resumed = run_characterization(config, tmp_path / "cut", resume=True, sweep=sweep)
    assert len(resumed.points) == len(full.points) == 2 * 2 * 6  # components x layer groups x feasible points
    # each point was evaluated once: the finished ones were not rewritten
    assert {p.name: p.stat().st_mtime_ns for p in _point_files(tmp_path / "cut") if p.name in finished} == finished
    def point(p):
        return p.component, p.group, p.stage, p.log2_msd, p.log2_freq, p.ppl, p.critical

    assert [point(p) for p in resumed.points] == [point(p) for p in full.points]
    assert (tmp_path / "cut" / "results.jsonl").read_bytes() == (tmp_path / "full" / "results.jsonl").read_bytes()
    assert any(p.critical for p in full.points) and not all(p.critical for p in full.points)


def test_resume_refuses_another_experiment(tmp_path, tiny_sweep):
    config, sweep = tiny_sweep
    config = dataclasses.replace(config, grid=Grid((16,), (0,)))
    run_characterization(config, tmp_path, sweep=sweep)
    other = dataclasses.replace(config, seed=1)
    with pytest.raises(InputError, match="cannot resume"):
        run_characterization(other, tmp_path, resume=True, sweep=sweep)


def test_resume_refuses_layer_groups_that_changed_meaning(tmp_path, tiny_sweep):
    config, sweep = tiny_sweep
    first = dataclasses.replace(config, layer_groups={"early": "0"})
    run_characterization(first, tmp_path, sweep=sweep)
    keys = [json.loads(line)["key"] for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert {"component": "o", "group": "early", "layers": "0", "stage": "prefill", "log2_msd": 16,
            "log2_freq": 2} in [json.loads(k) for k in keys]
    with pytest.raises(InputError, match="cannot resume"):
        run_characterization(dataclasses.replace(first, layer_groups={"early": "1"}), tmp_path, resume=True,
                             sweep=sweep)


@pytest.mark.parametrize("edit", [{"ppl": None}, {"ppl": "high"}, {"critical": 1}, {"gemms": 1.0}])
def test_a_points_record_that_is_not_a_point_is_an_input_error(tmp_path, tiny_sweep, edit):
    config, sweep = tiny_sweep
    config = dataclasses.replace(config, layer_groups={"all": "0-1"})
    run_characterization(config, tmp_path, sweep=sweep)
    path = _point_files(tmp_path)[0]
    record = json.loads(path.read_text())
    record["row"] = {k: v for k, v in {**record["row"], **edit}.items() if v is not None}
    path.write_text(json.dumps(record))
    with pytest.raises(InputError, match=f"is not a characterization point .*{next(iter(edit))}"):
        run_characterization(config, tmp_path, resume=True, sweep=sweep)


def test_more_errors_than_a_gemm_has_outputs_are_refused_before_any_point(tmp_path, tiny_sweep):
    config, sweep = tiny_sweep
    # 2^10 fits the largest GEMM of the tiny model (16 x 64 up projection), not the 16 x 32 o projection
    config = dataclasses.replace(config, grid=Grid((10, 20), (10,)))
    with pytest.raises(InputError, match=r"2\^10 errors per GEMM exceed the 16 x 32 outputs of a prefill o GEMM"):
        run_characterization(config, tmp_path, sweep=sweep)
    with pytest.raises(InputError, match="exceed the outputs of every GEMM"):
        run_characterization(dataclasses.replace(config, grid=Grid((12, 20), (11,))), tmp_path / "b", sweep=sweep)


def test_run_characterization_writes_profile_csv_and_heatmap(tmp_path, tiny_sweep):
    config, sweep = tiny_sweep
    result = run_characterization(config, tmp_path, sweep=sweep)
    profile = load_abft_profile(tmp_path / "profile.yaml")
    assert profile == result.profile
    assert profile.provenance.tokens == 32 and "msd=4/16/28" in profile.provenance.grid
    assert len((tmp_path / "points.csv").read_text().splitlines()) == 1 + len(result.points)
    assert (tmp_path / "heatmap.png").read_bytes()[:4] == b"\x89PNG"
    assert "onset" in (tmp_path / "report.txt").read_text()


def test_top1_metric_fits_on_the_changed_argmax_and_records_it(tmp_path, tiny_model):
    """--metric top1: each point's damage is the fraction of positions whose argmax differs from the
    error-free model's under the same injected errors (recomputed here by hand for every point), and the
    profile says it was fitted on top1."""
    import copy

    config = CharacterizeConfig(model="tiny", tokens=32, window=16, components=("o",), grid=Grid((4, 16, 28), (0, 2)),
                                layer_groups={"all": "0-1"}, metric="top1")
    assert config.tolerance == 0.05  # the metric's default
    windows = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(1))
    sweep = prepare(copy.deepcopy(tiny_model), windows, config)
    assert sweep.clean == {"prefill": 1.0}
    result = run_characterization(config, tmp_path, sweep=sweep)
    assert load_abft_profile(tmp_path / "profile.yaml").provenance.metric == "top1"
    assert "top-1 changed > 0.05" in (tmp_path / "report.txt").read_text()

    @torch.no_grad()
    def argmax():
        return torch.cat([sweep.model(w[None]).logits[0, :-1].argmax(-1) for w in windows])

    clean = argmax()
    for point in result.points:
        sweep.router.selection = Selection.parse("0-1", "o", "prefill", 2)
        sweep.router.fault = SumDeviation(1 << point.log2_msd, 1 << point.log2_freq,
                                          seed=_point_seed(0, "o", "all", "prefill", point.log2_freq))
        try:
            changed = float((argmax() != clean).double().mean())
        finally:
            sweep.router.fault = None
        assert point.delta == pytest.approx(changed, abs=1e-12) and point.ppl == pytest.approx(1 - changed)
    assert any(p.delta > 0 for p in result.points)


def test_metric_names_are_checked():
    for bad in ("acc", "task:", "ppl:x"):
        with pytest.raises(InputError, match="metric must be ppl, top1 or task:NAME"):
            CharacterizeConfig(metric=bad)
    with pytest.raises(InputError, match="for --metric task:NAME"):
        CharacterizeConfig(metric="top1", task_limit=4)
    assert CharacterizeConfig().tolerance == 1.0 and CharacterizeConfig(metric="task:x").tolerance == 0.02
    # a perplexity sweep's identity is what it was before metrics: its logs resume
    assert "metric" not in CharacterizeConfig().identity({})
    assert CharacterizeConfig(metric="top1").identity({})["metric"] == "top1"


@pytest.mark.llm
def test_cli_writes_the_files(tmp_path):
    from realm_hil.cli.characterize import characterize

    out = tmp_path / "run"
    args = [
        "--tokens",
        "32",
        "--window",
        "32",
        "--classes",
        "o,q",
        "--layers",
        "first=0",
        "--grid",
        "msd=10/30,freq=0",
        "--out",
        str(out),
        "--jobs",
        "1",
    ]
    result = CliRunner().invoke(characterize, args)
    assert result.exit_code == 0, result.output
    assert {"profile.yaml", "points.csv", "heatmap.png", "report.txt", "results.jsonl", "points"} <= {
        p.name for p in out.iterdir()
    }
    profile = load_abft_profile(out / "profile.yaml")
    assert profile.provenance.tokens == 32
    # a rerun over the same directory needs --resume, which then evaluates nothing new
    assert CliRunner().invoke(characterize, args).exit_code != 0
    again = CliRunner().invoke(characterize, [*args, "--resume"])
    assert again.exit_code == 0, again.output


@pytest.mark.llm
def test_task_metric_fits_on_the_harness_score(tmp_path):
    """--metric task:gpl3_mc: the error-free value is the task's accuracy (the tests' ranking by hand), each
    point's damage is its drop from it, and the profile records the metric."""
    from gpl3_task import MC_TASK, accuracy, ranking, write_task

    from realm_hil.llm.gemm import GemmRouter
    from realm_hil.llm.model import load_model
    from realm_hil.llm.offload import W8A8Config, quantize_model

    mc_items, _ = write_task(tmp_path / "tasks", mc=6, gen=1)
    config = CharacterizeConfig(tokens=16, window=16, components=("o",), layer_groups={"first": "0"},
                                grid=Grid((10, 30), (0,)), metric=f"task:{MC_TASK}",
                                task_include_path=str(tmp_path / "tasks"), task_limit=6)
    result = run_characterization(config, tmp_path / "run")
    loaded = load_model()
    quantize_model(loaded.model, W8A8Config(), GemmRouter())
    clean = accuracy(ranking(loaded, mc_items), mc_items)
    assert result.clean == {"prefill": clean}
    for point in result.points:
        assert point.delta == pytest.approx(clean - point.ppl)
    assert load_abft_profile(tmp_path / "run" / "profile.yaml").provenance.metric == f"task:{MC_TASK}"
    assert f"critical = {MC_TASK} drop > 0.02" in (tmp_path / "run" / "report.txt").read_text()
