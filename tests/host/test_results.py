import json
from pathlib import Path

import pytest

from realm_hil.errors import InputError
from realm_hil.results import atomic_write_json, check_output_dir, check_output_file


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "out" / "results.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"a": 2, "b": [1, 2]})
    assert json.loads(path.read_text()) == {"a": 2, "b": [1, 2]}
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]


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
