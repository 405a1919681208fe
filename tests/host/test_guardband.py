"""`realm-hil guardband --quick`: every strategy on a die warming up, checked against the run's exact oracle."""

import json

from click.testing import CliRunner

from realm_hil.cli.main import cli


def test_guardband_quick(tmp_path):
    out = tmp_path / "gb"
    result = CliRunner().invoke(cli, ["guardband", "--quick", "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
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
