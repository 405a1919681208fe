import json

from realm_hil.results import RecordLog, atomic_write_json


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
