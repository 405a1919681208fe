"""`run`'s grid as a campaign (one point per clock): the same rows and JSON in-process and on a pool of two,
resume recomputes nothing, and what cannot split into clocks is one line and exit 2."""

import json

import pytest
from click.testing import CliRunner

from realm_hil.campaign.executors import make_executor
from realm_hil.campaign.points import key_digest, point_key
from realm_hil.cli.main import cli
from realm_hil.errors import InputError
from realm_hil.experiment import RunConfig, run_experiment
from realm_hil.experiment_campaign import RunClock, run_experiment_campaign

# below the first errors, and two clocks in the pynq-z2 twin's error band, where the realm rows take their
# rate from the timing rows of their own clock
CLOCKS = [100.0, 118.0, 120.0]
CONFIG = dict(backend="twin", tokens=32, window=32, clocks_mhz=CLOCKS, policies=["none", "correct"],
              error_models=["timing", "realm"], layers="0-1")


def without_seconds(report) -> dict:
    data = report.to_dict()
    for row in data["rows"]:
        row.pop("seconds")
    return data


@pytest.fixture(scope="module")
def in_process():
    return without_seconds(run_experiment(RunConfig(**CONFIG)))


@pytest.mark.llm
def test_pool_rows_equal_in_process_rows_and_resume_recomputes_nothing(tmp_path, in_process):
    rows = in_process["rows"]
    assert len(rows) == 12
    # not a grid where every executor trivially agrees: errors at the overclocks, in both error models
    for model in ("timing", "realm"):
        assert any(r["tiles_err"] > 0 for r in rows if r["error_model"] == model and r["clock_mhz"] > 100)
    assert all(r["tiles_err"] == 0 for r in rows if r["clock_mhz"] == 100)

    directory = tmp_path / "pool"
    report = run_experiment_campaign(RunConfig(**CONFIG), directory, make_executor(2))
    assert without_seconds(report) == in_process
    # each row keeps the time its worker measured for it, beside the row: within its point's time, and
    # not an equal share (a policy that recomputes costs more than none)
    for i, clock in enumerate(CLOCKS):
        record = json.loads((directory / "points" / f"{key_digest(point_key(RunClock(clock)))}.json").read_text())
        seconds = [r.seconds for r in report.rows[4 * i:4 * i + 4]]
        assert seconds == record["part_seconds"] and len(set(seconds)) == len(seconds) == 4
        assert 0 < sum(seconds) <= record["seconds"]
    jsonl = (directory / "results.jsonl").read_bytes()

    # nothing to recompute: no worker starts, no point finishes, the same rows come back
    finished = []
    again = run_experiment_campaign(RunConfig(**CONFIG), directory, make_executor(2), resume=True,
                                    progress=finished.append)
    assert finished == []
    assert without_seconds(again) == in_process
    # one lost point is the only one recomputed, in-process this time, to the same bytes
    (directory / "points" / f"{key_digest(point_key(RunClock(118.0)))}.json").unlink()
    again = run_experiment_campaign(RunConfig(**CONFIG), directory, make_executor(1), resume=True,
                                    progress=finished.append)
    assert [p.last for p in finished] == [point_key(RunClock(118.0))]
    assert without_seconds(again) == in_process
    assert (directory / "results.jsonl").read_bytes() == jsonl
    # a point written without its rows' times (an older realm-hil) is refused, not given made-up times
    path = directory / "points" / f"{key_digest(point_key(RunClock(100.0)))}.json"
    path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "part_seconds"}))
    with pytest.raises(InputError, match="no time per row"):
        run_experiment_campaign(RunConfig(**CONFIG), directory, make_executor(1), resume=True)


@pytest.mark.llm
def test_cli_jobs_1_gives_the_in_process_json(tmp_path, in_process):
    args = ["run", "--backend", "twin", "--tokens", "32", "--window", "32", "--abft", "none,correct",
            "--error-model", "timing,realm", "--layers", "0-1", "--jobs", "1", "--campaign-dir", str(tmp_path),
            "--json", *[a for c in CLOCKS for a in ("--clock-mhz", str(c))]]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for row in data["rows"]:
        row.pop("seconds")
    assert data == in_process


@pytest.mark.parametrize("args, message", [
    (["--governor", "clock"], "--governor"),
    (["--confirm", "sim"], "--confirm"),
    (["--ambient", "45"], "--ambient"),
])
def test_what_cannot_split_into_clocks_is_one_line_and_exit_2(tmp_path, args, message):
    directory = tmp_path / "campaign"
    result = CliRunner().invoke(cli, ["run", "--backend", "twin", "--tokens", "8", "--window", "8", "--jobs", "2",
                                      "--campaign-dir", str(directory), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "campaign" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not directory.exists()


def test_a_campaign_without_a_directory_is_one_line_and_exit_2():
    result = CliRunner().invoke(cli, ["run", "--backend", "twin", "--tokens", "8", "--window", "8", "--jobs", "2"])
    assert result.exit_code == 2, result.output
    assert "--campaign-dir" in result.output and len(result.output.strip().splitlines()) == 1
