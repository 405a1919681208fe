import re
import shutil

import pytest

from realm_hil import regmap, regmap_gen


def test_generated_files_match_yaml():
    assert regmap_gen.main(["--check"]) == 0


def test_verilog_and_python_offsets_agree():
    text = regmap_gen.VH_PATH.read_text()
    defines = dict(re.findall(r"`define REALM_REG_(\w+) \d+'h([0-9A-F]+)", text))
    assert defines, "no register defines in the Verilog include"
    for name, (offset, _access) in regmap.REGISTERS.items():
        assert int(defines[name], 16) == offset


def test_offsets_unique_and_aligned():
    offsets = [offset for offset, _ in regmap.REGISTERS.values()]
    assert len(offsets) == len(set(offsets))
    assert all(offset % 4 == 0 for offset in offsets)


@pytest.fixture
def outputs_in(tmp_path, monkeypatch):
    """regmap_gen reading a copy of rtl/regmap.yaml and writing copies of its three outputs in tmp_path."""
    for attr in ("YAML_PATH", "VH_PATH", "PY_PATH", "TCL_PATH"):
        copy = tmp_path / getattr(regmap_gen, attr).name
        shutil.copy(getattr(regmap_gen, attr), copy)
        monkeypatch.setattr(regmap_gen, attr, copy)
    return tmp_path


@pytest.mark.parametrize("output", ["VH_PATH", "PY_PATH", "TCL_PATH"])
def test_each_output_that_drifts_fails_the_check_until_regenerated(outputs_in, output, capsys):
    path = getattr(regmap_gen, output)
    version = f"{regmap_gen.load(regmap_gen.YAML_PATH)['version']:08X}"
    text = path.read_text()
    assert version in text, "every output carries the register-map version"
    path.write_text(text.replace(version, "0001FFFF"))
    assert regmap_gen.main(["--check"]) == 1
    assert capsys.readouterr().err.strip() == f"stale generated register map: {path}"
    assert regmap_gen.main([]) == 0
    assert path.read_text() == text and regmap_gen.main(["--check"]) == 0


def test_an_edited_yaml_makes_all_three_stale(outputs_in, capsys):
    yaml_path = regmap_gen.YAML_PATH
    version = regmap_gen.load(yaml_path)["version"]
    yaml_path.write_text(yaml_path.read_text().replace(f"version: 0x{version:08X}", f"version: 0x{version + 1:08X}"))
    assert regmap_gen.main(["--check"]) == 1
    stale = capsys.readouterr().err.split(": ", 1)[1].strip().split(", ")
    assert sorted(stale) == sorted(str(getattr(regmap_gen, a)) for a in ("VH_PATH", "PY_PATH", "TCL_PATH"))
