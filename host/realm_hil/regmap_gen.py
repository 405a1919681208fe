"""Generate the Verilog include and the Python constants from rtl/regmap.yaml.

Run `python -m realm_hil.regmap_gen` after editing the YAML; `--check` exits non-zero when the
committed outputs differ from what the YAML produces (tests use it so they cannot drift).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from .repo_files import RTL

YAML_PATH = RTL / "regmap.yaml"
VH_PATH = RTL / "realm_regmap.vh"
PY_PATH = Path(__file__).resolve().parent / "regmap.py"

_HEADER = "generated from rtl/regmap.yaml by realm_hil.regmap_gen; do not edit"


def load(path: Path = YAML_PATH) -> dict:
    return yaml.safe_load(path.read_text())


def array_count(count: int | str, n: int) -> int:
    """Entries of a register array for array size n: an integer, or a product of integers and N ("3*N")."""
    if isinstance(count, int):
        return count
    total = 1
    for factor in str(count).replace(" ", "").split("*"):
        if factor == "N":
            total *= n
        elif factor.isdigit():
            total *= int(factor)
        else:
            raise ValueError(f"regmap array count {count!r} is neither an integer nor a product of integers and N")
    return total


def render_verilog(spec: dict) -> str:
    aw = spec["addr_width"]
    lines = [f"// {_HEADER}", "`ifndef REALM_REGMAP_VH", "`define REALM_REGMAP_VH", ""]
    lines.append(f"`define REALM_ID_VALUE 32'h{spec['id']:08X}")
    lines.append(f"`define REALM_VERSION_VALUE 32'h{spec['version']:08X}")
    lines.append(f"`define REALM_ADDR_WIDTH {aw}")
    lines.append(f"`define REALM_STREAM_MAGIC 16'h{spec['stream']['magic']:04X}")
    lines.append(f"`define REALM_STATS_WORDS {spec['stream']['stats_words']}")
    lines.append("")
    for reg in spec["registers"]:
        lines.append(f"`define REALM_REG_{reg['name']} {aw}'h{reg['offset']:03X}")
        for field, (msb, lsb) in reg.get("fields", {}).items():
            lines.append(f"`define REALM_{reg['name']}_{field}_MSB {msb}")
            lines.append(f"`define REALM_{reg['name']}_{field}_LSB {lsb}")
    lines.append("")
    for arr in spec["arrays"]:
        lines.append(f"`define REALM_ARR_{arr['name']}_BASE {aw}'h{arr['offset']:03X}")
    lines += ["", "`endif", ""]
    return "\n".join(lines)


def render_python(spec: dict) -> str:
    lines = [f'"""Register map constants ({_HEADER})."""', ""]
    lines.append(f"ID_VALUE = 0x{spec['id']:08X}")
    lines.append(f"VERSION_VALUE = 0x{spec['version']:08X}")
    lines.append(f"ADDR_WIDTH = {spec['addr_width']}")
    lines.append(f"WINDOW = 0x{1 << spec['addr_width']:X}")
    lines.append(f"STREAM_MAGIC = 0x{spec['stream']['magic']:04X}")
    lines.append(f"STATS_WORDS = {spec['stream']['stats_words']}")
    cells = spec["stream"]["bd_cells"]
    lines.append(f"BD_CELLS = {dict(sorted(cells.items()))!r}")
    lines.append("")
    for reg in spec["registers"]:
        lines.append(f"{reg['name']} = 0x{reg['offset']:03X}")
    lines.append("")
    lines.append("# (msb, lsb) of each register field")
    for reg in spec["registers"]:
        for field, (msb, lsb) in reg.get("fields", {}).items():
            lines.append(f"{reg['name']}_{field} = ({msb}, {lsb})")
    lines.append("")
    for arr in spec["arrays"]:
        lines.append(f"{arr['name']}_BASE = 0x{arr['offset']:04X}")
    lines.append("")
    lines.append("REGISTERS = {")
    for reg in spec["registers"]:
        lines.append(f"    {reg['name']!r}: (0x{reg['offset']:03X}, {reg['access']!r}),")
    lines.append("}")
    lines.append("")
    return "\n".join(lines)


def outputs(spec: dict) -> dict[Path, str]:
    return {VH_PATH: render_verilog(spec), PY_PATH: render_python(spec)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs(load()).items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text)
    if args.check and stale:
        print("stale generated register map: " + ", ".join(str(p) for p in stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
