import json
from pathlib import Path

import pytest

from realm_hil.errors import InputError
from realm_hil.results import RecordLog, atomic_write_json, check_output_dir, check_output_file


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "out" / "results.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"a": 2, "b": [1, 2]})
    assert json.loads(path.read_text()) == {"a": 2, "b": [1, 2]}
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]


def test_record_log_resumes_and_ignores_torn_line(tmp_path):
    path = tmp_path / "points.jsonl"
    log = RecordLog(path)
    log.add("p0", {"ppl": 1.5})
    log.add("p1", {"ppl": 2.5})
    with open(path, "a") as handle:
        handle.write('{"key": "p2", "ppl": 3')  # crash mid-write
    resumed = RecordLog(path)
    assert "p0" in resumed and "p1" in resumed and "p2" not in resumed
    resumed.add("p2", {"ppl": 3.5})
    assert RecordLog(path).records["p2"]["ppl"] == 3.5


@pytest.mark.parametrize("line", ["[1, 2]", '"text"', '{"ppl": 1.0}', '{"key": 3}'])
def test_a_json_line_that_is_not_a_record_is_an_input_error(tmp_path, line):
    path = tmp_path / "points.jsonl"
    path.write_text('{"key": "p0", "ppl": 1.5}\n' + line + "\n")
    with pytest.raises(InputError, match=r"points.jsonl:2: not a record"):
        RecordLog(path)


def test_output_dir_checks_probe_for_real(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("")
    assert check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert list(tmp_path.iterdir()) == [afile]  # the probe leaves nothing behind
    for bad, message in ((afile, "is a file"), (afile / "x", "not a directory"), (Path("/sys/x/y"), "cannot write")):
        with pytest.raises(InputError, match=message):
            check_output_dir(bad)
    with pytest.raises(InputError, match="is a directory"):
        check_output_file(tmp_path)
    assert check_output_file(tmp_path / "new" / "p.yaml") == tmp_path / "new" / "p.yaml"
