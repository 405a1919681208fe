import re

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
