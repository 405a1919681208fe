"""Generate fpga/common/registers.tcl (ipx::add_register calls) from rtl/regmap.yaml.

package_ip.tcl sources it so that the packaged IP, and with it the .hwh that PYNQ reads,
names every register. Run `python -m realm_hil.fpga.registers_tcl` after editing the YAML;
`--check` exits non-zero when the committed file differs.
"""

from __future__ import annotations

import argparse
import sys

from ..regmap_gen import array_count, load
from ..repo_files import FPGA

TCL_PATH = FPGA / "common" / "registers.tcl"

ACCESS = {"ro": "read-only", "wo": "write-only", "rw": "read-write"}

_PRELUDE = """\
# generated from rtl/regmap.yaml by realm_hil.fpga.registers_tcl; do not edit
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


def render(spec: dict) -> str:
    out = [_PRELUDE.format(version=f"0x{spec['version']:08X}", addr_width=spec["addr_width"])]
    for reg in spec["registers"]:
        fields = " ".join(f"{name} {msb} {lsb}" for name, (msb, lsb) in reg.get("fields", {}).items())
        out.append(
            f"    realm_reg $block {reg['name']} 0x{reg['offset']:04X} {ACCESS[reg['access']]} "
            f"{_braced(reg['doc'])} {{{fields}}}\n"
        )
    for arr in spec["arrays"]:
        out.append(f"    for {{set i 0}} {{$i < {_count_expr(arr['count'])}}} {{incr i}} {{\n")
        out.append(
            f"        realm_reg $block {arr['name']}_$i [format 0x%04X "
            f"[expr {{0x{arr['offset']:04X} + 4 * $i}}]] "
            f"{ACCESS[arr['access']]} {_braced(arr['doc'])} {{}}\n"
        )
        out.append("    }\n")
    out.append("}\n")
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    text = render(load())
    if TCL_PATH.exists() and TCL_PATH.read_text() == text:
        return 0
    if args.check:
        print(f"stale generated register map: {TCL_PATH}", file=sys.stderr)
        return 1
    TCL_PATH.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
