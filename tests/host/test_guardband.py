"""`realm-hil guardband --quick`: every strategy on a die warming up, checked against the run's exact oracle;
the grid as a campaign gives the same rows on a process pool, and --resume recomputes only missing points."""

import json
import shutil

import pytest
from click.testing import CliRunner

from realm_hil.cli.main import cli


def guardband(out, *options):
    result = CliRunner().invoke(cli, ["guardband", "--quick", "--json", "--out", str(out), *options])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def timeless(rows):
    """The rows without their wall-clock seconds (the one field no two runs share)."""
    assert all(r["seconds"] > 0 for r in rows)
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.fixture(scope="module")
def in_process(tmp_path_factory):
    """The grid in the driver, one point after the other: the old behaviour, the other executors' reference."""
    out = tmp_path_factory.mktemp("guardband") / "gb"
    return out, guardband(out, "--jobs", "1")


def test_guardband_quick(in_process):
    out, rows = in_process
    assert rows == json.loads((out / "guardband.json").read_text())["rows"]
    by = {(r["trace"], r["strategy"], r["policy"]): r for r in rows}
    assert len(rows) == len(by) == 2 * 7
    for trace in ("25C", "warmup"):
        rated, oracle = by[trace, "rated", "none"], by[trace, "oracle", "none"]
        # the rated clock is the baseline, and error-free (sign-off) while the junction stays in range
        assert rated["throughput_x"] == 1.0 and rated["energy_x"] == 1.0
        if not rated["outside_rated"]:
            assert rated["escaped_errors"] == 0 and rated["delta_ppl"] == 0
        # the oracle's clock is exact at every moment: no wrong element, yet well above the rated clock
        assert oracle["escaped_errors"] == 0 and oracle["delta_ppl"] == 0 and oracle["throughput_x"] > 1.15
        assert oracle["oracle_x"] == 1.0
        # classic recomputes every flagged tile (exact checksums): nothing gets through, whatever the clock
        governed = by[trace, "governor", "classic"]
        assert governed["escaped_errors"] == 0 and governed["throughput_x"] > 1.0
    # tuned once at the start, the die warms up and the static clock lets errors through
    static = by["warmup", "static", "none"]
    assert static["escaped_errors"] > 0 and static["max_tj_c"] > oracle["max_tj_c"] - 5
    for name in ("guardband.json", "guardband.csv", "table.txt", "clock-die0-warmup.png"):
        assert (out / name).stat().st_size > 0
    assert len(list((out / "traces").glob("*.csv"))) == 14


def test_a_pool_gives_the_in_process_rows(tmp_path, in_process):
    reference, rows = in_process
    pooled = guardband(tmp_path, "--jobs", "2")
    assert timeless(pooled) == timeless(rows)
    assert (tmp_path / "results.jsonl").read_bytes() == (reference / "results.jsonl").read_bytes()
    for trace in (reference / "traces").iterdir():
        assert (tmp_path / "traces" / trace.name).read_bytes() == trace.read_bytes()
    workers = {json.loads(p.read_text())["worker"] for p in (tmp_path / "points").iterdir()}
    assert len(workers) == 2


def test_resume_computes_only_the_missing_points(tmp_path, in_process):
    reference, rows = in_process
    out = tmp_path / "gb"
    shutil.copytree(reference, out)
    points = sorted((out / "points").iterdir())
    assert len(points) == len(rows) == 14
    for lost in points[::5]:  # as if the driver had been killed before these finished
        lost.unlink()
    kept = {p.name: p.stat().st_mtime_ns for p in (out / "points").iterdir()}
    again = CliRunner().invoke(cli, ["guardband", "--quick", "--jobs", "1", "--out", str(out)])
    assert again.exit_code == 2 and "pass --resume" in again.output and "Traceback" not in again.output
    resumed = guardband(out, "--jobs", "1", "--resume")
    assert {p: (out / "points" / p).stat().st_mtime_ns for p in kept} == kept
    assert len(list((out / "points").iterdir())) == 14
    assert timeless(resumed) == timeless(rows)
    assert (out / "results.jsonl").read_bytes() == (reference / "results.jsonl").read_bytes()
