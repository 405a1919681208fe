"""Static checks of the Vivado scripts in fpga/ against the RTL and the register map.

Vivado is not needed: the scripts are read as text, the port list is parsed from
rtl/realm_accel.v. A renamed port, a moved register or a misspelt clock pin then fails a
test here instead of a user's two-hour Vivado run. `problems()` returns one line per
inconsistency; an empty list means the scripts agree with the RTL and rtl/regmap.yaml.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..filelist import FilelistError, expand
from ..regmap_gen import array_count
from ..repo_files import ROOT, RTL

BOARD_KEYS = (
    "realm_part",
    "realm_board_part",
    "realm_board_store_item",
    "realm_ps_vlnv",
    "realm_ps_rule",
    "realm_ps_automation",
    "realm_ps_config",
    "realm_ps_part_preset",
    "realm_ps_clk_param",
    "realm_ps_master",
    "realm_hp_port",
    "realm_safe_clk",
    "realm_n",
    "realm_safe_mhz",
    "realm_rated_mhz",
    "realm_dma_addr_width",
)
# Pin and parameter names of each PS IP (from its 2024.1 port list); build_bd.tcl takes them from board.tcl.
PS_PINS = {
    "xilinx.com:ip:processing_system7:5.5": {
        "realm_safe_clk": "FCLK_CLK0",
        "realm_ps_master": "M_AXI_GP0",
        "realm_hp_port": "S_AXI_HP0",
        "realm_ps_clk_param": "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ",
    },
    "xilinx.com:ip:zynq_ultra_ps_e:3.5": {
        "realm_safe_clk": "pl_clk0",
        "realm_ps_master": "M_AXI_HPM0_FPD",
        "realm_hp_port": "S_AXI_HP0_FPD",
        "realm_ps_clk_param": "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ",
    },
}
# the prefix of every configuration parameter of each PS IP
PS_PARAM_PREFIX = {"xilinx.com:ip:processing_system7:5.5": "PCW_", "xilinx.com:ip:zynq_ultra_ps_e:3.5": "PSU__"}
AXIL_SIGNALS = (
    "awaddr",
    "awprot",
    "awvalid",
    "awready",
    "wdata",
    "wstrb",
    "wvalid",
    "wready",
    "bresp",
    "bvalid",
    "bready",
    "araddr",
    "arprot",
    "arvalid",
    "arready",
    "rdata",
    "rresp",
    "rvalid",
    "rready",
)
AXIS_SIGNALS = ("tdata", "tkeep", "tvalid", "tready", "tlast")
CLOCK_PORTS = ("aclk", "array_clk")


@dataclass(frozen=True)
class Port:
    name: str
    direction: str  # "input" or "output"
    width: str  # the declared range without brackets ("13:0", "16*N-1:0"), "" for one bit


def board_settings(path: Path) -> dict[str, str]:
    """`set realm_<key> <value>` lines of a board.tcl, continued lines joined; a braced value loses its outer braces."""
    settings = {}
    for line in re.sub(r"\\\n\s*", " ", path.read_text()).splitlines():
        match = re.match(r"\s*set\s+(realm_\w+)\s+(.*?)\s*$", line)
        if match:
            value = match[2]
            if value.startswith("{") and value.endswith("}"):
                value = value[1:-1]
            settings[match[1]] = value
    return settings


def readme_boards(path: Path) -> dict[str, dict[str, str]]:
    """The board table of fpga/README.md: board -> part, array N, safe and rated MHz as written."""
    rows = {}
    row = r"^\| `([\w-]+)`[^|]*\|([^|]*)\|([^|]*)\|([^|]*)\|([^|]*)\|\s*$"
    for match in re.finditer(row, path.read_text(), flags=re.M):
        part, n, safe, rated = (cell.strip() for cell in match.groups()[1:])
        rows[match[1]] = {"realm_part": part, "realm_n": n, "realm_safe_mhz": safe.removesuffix(" MHz"),
                          "realm_rated_mhz": rated.removesuffix(" MHz")}
    return rows


def _strip_comments(verilog: str) -> str:
    return re.sub(r"//[^\n]*|/\*.*?\*/", "", verilog, flags=re.S)


def rtl_ports(path: Path = RTL / "realm_accel.v", module: str = "realm_accel") -> dict[str, Port]:
    """The ANSI port list of `module` in `path`."""
    text = _strip_comments(path.read_text())
    match = re.search(rf"\bmodule\s+{module}\b.*?\)\s*\((.*?)\);", text, flags=re.S)
    if match is None:
        raise ValueError(f"{path}: no ANSI port list for module {module}")
    ports = {}
    for decl in re.finditer(
        r"\b(input|output)\s+(?:wire|reg)?\s*(?:signed\s+)?(?:\[([^\]]+)\])?\s*(\w+)", match[1]
    ):
        ports[decl[3]] = Port(decl[3], decl[1], re.sub(r"\s+", "", decl[2] or ""))
    return ports


def rtl_parameters(path: Path = RTL / "realm_accel.v", module: str = "realm_accel") -> set[str]:
    text = _strip_comments(path.read_text())
    match = re.search(rf"\bmodule\s+{module}\s*#\s*\((.*?)\)\s*\(", text, flags=re.S)
    return set(re.findall(r"\bparameter\s+(?:integer\s+)?(\w+)", match[1])) if match else set()


def _width_factor(width: str) -> int | None:
    """k for a range written k*N-1:0, else None."""
    match = re.fullmatch(r"(\d+)\*N-1:0", width)
    return int(match[1]) if match else None


def registers_in_tcl(text: str, n: int) -> dict[str, int]:
    """Register name -> offset as registers.tcl adds them for array size `n` (loops unrolled)."""
    regs = {}
    for match in re.finditer(r"^\s*realm_reg \$block (\w+) (0x[0-9A-Fa-f]+) ", text, flags=re.M):
        regs[match[1]] = int(match[2], 16)
    loop = re.compile(
        r"for \{set i 0\} \{\$i < ([^}]+)\} \{incr i\} \{\s*\n\s*realm_reg \$block (\w+)_\$i "
        r"\[format 0x%04X \[expr \{(0x[0-9A-Fa-f]+) \+ 4 \* \$i\}\]\]"
    )
    for match in loop.finditer(text):
        try:
            count = array_count(match[1].replace("$n", "N"), n)
        except ValueError:
            raise ValueError(f"registers.tcl: cannot evaluate loop bound {match[1]!r}") from None
        for i in range(count):
            regs[f"{match[2]}_{i}"] = int(match[3], 16) + 4 * i
    return regs


def expected_registers(spec: dict, n: int) -> dict[str, int]:
    regs = {reg["name"]: reg["offset"] for reg in spec["registers"]}
    for arr in spec["arrays"]:
        count = array_count(arr["count"], n)
        regs.update({f"{arr['name']}_{i}": arr["offset"] + 4 * i for i in range(count)})
    return regs


def _accel_references(common: Path) -> dict[str, set[str]]:
    """Pins and interfaces of the realm_accel cell that each script names."""
    refs = {}
    for script in ("build_bd.tcl", "constraints.tcl", "check_timing.tcl"):
        text = (common / script).read_text()
        names = set(re.findall(r"(?:\$realm_cell_accel|realm_accel)/(\w+)", text))
        names |= set(re.findall(r"realm_clock_on (\w+)", text)) - {"pin"}
        refs[script] = names
    return refs


def problems(repo: Path = ROOT) -> list[str]:
    """Every inconsistency between fpga/, rtl/realm_accel.v and rtl/regmap.yaml, one line each."""
    from ..regmap_gen import load
    from ..timing.device_profile import load_profile

    common, rtl = repo / "fpga" / "common", repo / "rtl"
    top = rtl / "realm_accel.v"
    if not top.exists():
        return [f"{top} does not exist"]
    spec = load(rtl / "regmap.yaml")
    ports = rtl_ports(top)
    params = rtl_parameters(top)
    found: list[str] = []

    interfaces = {"s_axil": AXIL_SIGNALS, "s_axis": AXIS_SIGNALS, "m_axis": AXIS_SIGNALS}
    for busif, signals in interfaces.items():
        missing = [s for s in signals if f"{busif}_{s}" not in ports]
        if missing:
            found.append(
                f"realm_accel.v: interface {busif} lacks {', '.join(busif + '_' + s for s in missing)}"
            )
    known = set(ports) | set(interfaces)
    for script, names in _accel_references(common).items():
        for name in sorted(names - known):
            found.append(
                f"fpga/common/{script}: realm_accel/{name} is neither "
                f"a port nor an interface of realm_accel.v"
            )
    for clock in CLOCK_PORTS:
        if clock not in ports or ports[clock].direction != "input":
            found.append(
                f"realm_accel.v: clock input {clock} (used by package_ip.tcl, "
                f"build_bd.tcl, constraints.tcl) is missing"
            )
    for name in ("s_axil_awaddr", "s_axil_araddr"):
        if name in ports and ports[name].width != f"{spec['addr_width'] - 1}:0":
            found.append(
                f"realm_accel.v: {name}[{ports[name].width}] does not "
                f"span addr_width {spec['addr_width']} of regmap.yaml"
            )

    package = (common / "package_ip.tcl").read_text()
    busifs = re.search(r"foreach busif \{([^}]*)\}", package)
    named = set(busifs[1].split()) if busifs else set()
    named |= set(re.findall(r"-(?:clock|reset) (\w+)", package))
    named |= set(re.findall(r"infer_bus_interface (\w+)", package))
    for name in sorted(named - known):
        found.append(
            f"fpga/common/package_ip.tcl: {name} is neither a port nor an interface of realm_accel.v"
        )
    # the IP's sources are those of the one source list every tool reads, never a glob or a hand-kept list
    if "source [file join $realm_common filelist.tcl]" not in package or not re.search(
        r"add_files -norecurse \[realm_filelist \[file join \$rtl realm_accel\.f\]\]", package
    ):
        found.append("fpga/common/package_ip.tcl: does not add the sources rtl/realm_accel.f lists (realm_filelist)")
    if re.search(r"\bglob\b|add_files[^\n]*realm_\w+\.v\b", package):
        found.append("fpga/common/package_ip.tcl: names Verilog sources itself; rtl/realm_accel.f lists them")
    try:
        expand(rtl / "realm_accel.f")
    except FilelistError as exc:
        found.append(str(exc))
    if "aresetn" not in ports:
        found.append("realm_accel.v: reset input aresetn (package_ip.tcl associates it with aclk) is missing")

    build_bd = (common / "build_bd.tcl").read_text()
    accel_config = re.search(r"set_property -dict \[list ([^\]]*)\] \$accel", build_bd)
    if accel_config is None:
        found.append(
            "fpga/common/build_bd.tcl: no `set_property -dict [list "
            "...] $accel` setting realm_accel's parameters"
        )
    for param in sorted(set(re.findall(r"CONFIG\.(\w+) ", accel_config[1] if accel_config else ""))):
        if param not in params:
            found.append(
                f"fpga/common/build_bd.tcl: sets CONFIG.{param} on realm_accel, which has no such parameter"
            )
    for port, dma_param in (
        ("s_axis_tdata", "c_m_axis_mm2s_tdata_width"),
        ("m_axis_tdata", "c_s_axis_s2mm_tdata_width"),
    ):
        dma = re.search(rf"CONFIG\.{dma_param} \[expr \{{(\d+) \* \$realm_n\}}\]", build_bd)
        rtl_factor = _width_factor(ports[port].width) if port in ports else None
        if dma is None or rtl_factor is None or int(dma[1]) != rtl_factor:
            found.append(
                f"fpga/common/build_bd.tcl: {dma_param} must be {rtl_factor}*N to "
                f"match {port}[{ports[port].width if port in ports else '?'}]"
            )

    # the board files: resolved by board_part.tcl (installed, from the store, or the part alone), never assumed
    if "source [file join $realm_common board_part.tcl]" not in build_bd or "[realm_board_part " not in build_bd:
        found.append("fpga/common/build_bd.tcl: does not look up the board files (board_part.tcl's realm_board_part)")
    if re.search(r"set_property board_part \$realm_board_part\b", build_bd):
        found.append("fpga/common/build_bd.tcl: sets board_part to board.tcl's pattern instead of the part found")
    # the clock label the automation matches is Vivado's, from the pin's frequency (99.999 MHz on ZynqMP)
    code = re.sub(r"^\s*#[^\n]*", "", build_bd, flags=re.M)
    if not re.search(r"^set safe_hz \[get_property CONFIG\.FREQ_HZ \[get_bd_pins ps/\$realm_safe_clk\]\]$", code,
                     flags=re.M):
        found.append("fpga/common/build_bd.tcl: does not read the safe clock's frequency (safe_hz) from the PS pin")
    if re.search(r"\(\d+(?:\.\d+)? MHz\)", code) or not re.search(r"^set safe_clk [^\n]*\$safe_hz", code, flags=re.M):
        found.append("fpga/common/build_bd.tcl: a clock label with a fixed frequency; derive it from the pin's FREQ_HZ")
    wizard = re.search(r"^set wiz \[(.*?)^\] \$wiz$", code, flags=re.S | re.M)
    if wizard is None or "CONFIG.USE_SAFE_CLOCK_STARTUP true" not in wizard[1]:
        found.append("fpga/common/build_bd.tcl: the Clocking Wizard lacks CONFIG.USE_SAFE_CLOCK_STARTUP true")

    env = (common / "env.tcl").read_text()
    cells = dict(re.findall(r"set realm_cell_(\w+) (\w+)", env))
    wanted = {
        "accel": spec["stream"]["bd_cells"]["accelerator"],
        "dma": spec["stream"]["bd_cells"]["dma"],
        "clk_wiz": spec["stream"]["bd_cells"]["clock_wizard"],
    }
    for key, name in wanted.items():
        if cells.get(key) != name:
            found.append(
                f"fpga/common/env.tcl: realm_cell_{key} is {cells.get(key)!r}, "
                f"regmap.yaml stream.bd_cells says {name!r}"
            )

    registers = (common / "registers.tcl").read_text()
    if f"set realm_regmap_version 0x{spec['version']:08X}" not in registers:
        found.append("fpga/common/registers.tcl: realm_regmap_version differs from regmap.yaml")
    if f"set realm_regmap_addr_width {spec['addr_width']}" not in registers:
        found.append("fpga/common/registers.tcl: realm_regmap_addr_width differs from regmap.yaml")

    makefile = (common / "vivado.mk").read_text()
    for script in sorted(p.name for p in common.glob("*.tcl")):
        if f"$(COMMON)/{script}" not in makefile:
            found.append(
                f"fpga/common/vivado.mk: no rule depends on {script}, so editing it would not rebuild"
            )

    for board_tcl in sorted((repo / "fpga").glob("*/board.tcl")):
        board = board_tcl.parent.name
        settings = board_settings(board_tcl)
        missing = [k for k in BOARD_KEYS if k not in settings]
        if missing:
            found.append(f"fpga/{board}/board.tcl: missing {', '.join(missing)}")
            continue
        pins = PS_PINS.get(settings["realm_ps_vlnv"])
        if pins is None:
            found.append(f"fpga/{board}/board.tcl: unknown PS {settings['realm_ps_vlnv']}")
        else:
            for key, value in pins.items():
                if settings[key] != value:
                    found.append(
                        f"fpga/{board}/board.tcl: {key} is {settings[key]}, "
                        f"{settings['realm_ps_vlnv']} calls it {value}"
                    )
        if not re.fullmatch(r"\*:[\w-]+:part0:\*", settings["realm_board_part"]):
            found.append(f"fpga/{board}/board.tcl: realm_board_part {settings['realm_board_part']} is not "
                         "a pattern *:<board>:part0:* for any installed version")
        prefix = PS_PARAM_PREFIX.get(settings["realm_ps_vlnv"], "")
        for param in re.findall(r"CONFIG\.(\w+)", settings["realm_ps_part_preset"]):
            if not param.startswith(prefix):
                found.append(f"fpga/{board}/board.tcl: realm_ps_part_preset sets CONFIG.{param}, "
                             f"not a parameter of {settings['realm_ps_vlnv']}")
        documented = readme_boards(repo / "fpga" / "README.md").get(board)
        for key in ("realm_part", "realm_n", "realm_safe_mhz", "realm_rated_mhz"):
            if documented is None or float_or_text(documented[key]) != float_or_text(settings[key]):
                found.append(f"fpga/README.md: the {board} row says {key} "
                             f"{documented[key] if documented else '(no row)'}, board.tcl {settings[key]}")
        n = int(settings["realm_n"])
        if not 4 <= n <= 32:
            found.append(f"fpga/{board}/board.tcl: realm_n {n} is outside 4..32 (realm_accel.v)")
        if float(settings["realm_rated_mhz"]) <= 0 or float(settings["realm_safe_mhz"]) <= 0:
            found.append(f"fpga/{board}/board.tcl: clock frequencies must be positive")
        # the timing profile's nominal clock is the clock the build must close: one number, two files
        nominal = load_profile(board).nominal_clock_mhz
        if float(settings["realm_rated_mhz"]) != nominal:
            found.append(
                f"fpga/{board}/board.tcl: realm_rated_mhz {settings['realm_rated_mhz']} differs from "
                f"the {board} timing profile's nominal clock {nominal} MHz"
            )
        tcl_regs = registers_in_tcl(registers, n)
        for name, offset in sorted(expected_registers(spec, n).items(), key=lambda kv: kv[1]):
            if tcl_regs.get(name) != offset:
                found.append(
                    f"fpga/common/registers.tcl: {name} at {tcl_regs.get(name)} "
                    f"for N={n}, regmap.yaml says 0x{offset:04X}"
                )
                break
        if len(tcl_regs) != len(expected_registers(spec, n)):
            found.append(
                f"fpga/common/registers.tcl: {len(tcl_regs)} registers for N={n}, "
                f"regmap.yaml has {len(expected_registers(spec, n))}"
            )
    return found


def float_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def main() -> int:
    found = problems()
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
