"""Generate the Verilog include, the Python constants and the Vivado register Tcl from rtl/regmap.yaml.

Run `make regmap` (`python -m realm_hil.regmap_gen`) after editing the YAML; `--check` exits non-zero
when a committed output differs from what the YAML produces (`make lint` and the tests use it, so
none of the three can drift). fpga/common/package_ip.tcl sources registers.tcl so that the packaged
IP, and with it the .hwh that PYNQ reads, names every register.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from .repo_files import FPGA, RTL

YAML_PATH = RTL / "regmap.yaml"
VH_PATH = RTL / "realm_regmap.vh"
PY_PATH = Path(__file__).resolve().parent / "regmap.py"
TCL_PATH = FPGA / "common" / "registers.tcl"

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


_TCL_ACCESS = {"ro": "read-only", "wo": "write-only", "rw": "read-write"}

_TCL_PRELUDE = """\
# {header}
# Tested with Vivado 2024.1.

set realm_regmap_version {version}
set realm_regmap_addr_width {addr_width}

# One 32-bit register; `fields` is a flat list of name msb lsb. PYNQ's register_map needs at
# least one field per register, so a register without fields gets one spanning the word.
proc realm_reg {{block name offset access doc fields}} {{
    set reg [ipx::add_register $name $block]
    set_property address_offset $offset $reg
    set_property size 32 $reg
    set_property access $access $reg
    set_property description $doc $reg
    if {{[llength $fields] == 0}} {{
        set fields [list $name 31 0]
    }}
    foreach {{field msb lsb}} $fields {{
        set f [ipx::add_field $field $reg]
        set_property bit_offset $lsb $f
        set_property bit_width [expr {{$msb - $lsb + 1}}] $f
        set_property access $access $f
    }}
}}

# Every register of the map into address block `block`; `n` is the array size N of this build.
proc realm_add_registers {{block n}} {{
"""


def _braced(text: str) -> str:
    if "{" in text or "}" in text or "\\" in text:
        raise ValueError(f"regmap doc {text!r} contains a brace or backslash, which Tcl cannot brace-quote")
    return "{" + text + "}"


def _count_expr(count) -> str:
    """The array count as a Tcl expression in the loop's `n`; raises ValueError like array_count."""
    array_count(count, 1)
    return str(count).replace(" ", "").replace("N", "$n")


def render_tcl(spec: dict) -> str:
    version = f"0x{spec['version']:08X}"
    out = [_TCL_PRELUDE.format(header=_HEADER, version=version, addr_width=spec["addr_width"])]
    for reg in spec["registers"]:
        fields = " ".join(f"{name} {msb} {lsb}" for name, (msb, lsb) in reg.get("fields", {}).items())
        out.append(
            f"    realm_reg $block {reg['name']} 0x{reg['offset']:04X} {_TCL_ACCESS[reg['access']]} "
            f"{_braced(reg['doc'])} {{{fields}}}\n"
        )
    for arr in spec["arrays"]:
        out.append(f"    for {{set i 0}} {{$i < {_count_expr(arr['count'])}}} {{incr i}} {{\n")
        out.append(
            f"        realm_reg $block {arr['name']}_$i [format 0x%04X "
            f"[expr {{0x{arr['offset']:04X} + 4 * $i}}]] "
            f"{_TCL_ACCESS[arr['access']]} {_braced(arr['doc'])} {{}}\n"
        )
        out.append("    }\n")
    out.append("}\n")
    return "".join(out)


def outputs(spec: dict) -> dict[Path, str]:
    return {VH_PATH: render_verilog(spec), PY_PATH: render_python(spec), TCL_PATH: render_tcl(spec)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs(load(YAML_PATH)).items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text)
    if args.check and stale:
        print("stale generated register map: " + ", ".join(str(p.resolve()) for p in stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
