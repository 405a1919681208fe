"""The Vivado scripts in fpga/ agree with rtl/realm_accel.v and rtl/regmap.yaml (no Vivado needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from realm_hil.fpga import tcl_check
from realm_hil.regmap_gen import load, render_tcl
from realm_hil.timing.device_profile import load_profile

REPO = Path(__file__).resolve().parents[2]
needs_top = pytest.mark.skipif(
    not (REPO / "rtl" / "realm_accel.v").exists(), reason="rtl/realm_accel.v (the IP top) does not exist yet"
)


def test_registers_tcl_is_regenerated_identically():
    assert (REPO / "fpga" / "common" / "registers.tcl").read_text() == render_tcl(load())


@needs_top
def test_scripts_agree_with_rtl_and_regmap():
    assert tcl_check.problems() == []


@pytest.mark.parametrize("n", [8, 16])
def test_registers_tcl_offsets_equal_regmap(n):
    text = (REPO / "fpga" / "common" / "registers.tcl").read_text()
    assert tcl_check.registers_in_tcl(text, n) == tcl_check.expected_registers(load(), n)


@pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh is not installed")
def test_registers_tcl_runs_and_adds_every_register(tmp_path):
    """Execute registers.tcl in plain Tcl with ipx:: stand-ins that record what Vivado would get."""
    driver = tmp_path / "driver.tcl"
    driver.write_text(
        "namespace eval ipx {}\n"
        "proc ipx::add_register {name block} { return $name }\n"
        "proc ipx::add_field {name reg} { return $reg.$name }\n"
        'proc set_property {prop value obj} { puts "$obj $prop $value" }\n'
        f"source {REPO / 'fpga' / 'common' / 'registers.tcl'}\n"
        "realm_add_registers reg0 8\n"
    )
    out = subprocess.run(["tclsh", str(driver)], capture_output=True, text=True, check=True).stdout
    props = [line.split(" ", 2) for line in out.splitlines()]
    offsets = {obj: int(value, 16) for obj, prop, value in props if prop == "address_offset"}
    assert offsets == tcl_check.expected_registers(load(), 8)
    fields = {obj: value for obj, prop, value in props if prop == "bit_offset"}
    assert fields["PARAMS.TIMING_EMU"] == "8" and fields["ALPHA.ALPHA"] == "0"
    access = {obj: value for obj, prop, value in props if prop == "access" and "." not in obj}
    assert (
        access["CTRL"] == "write-only"
        and access["STATUS"] == "read-only"
        and access["L_TABLE_63"] == "read-write"
    )


@needs_top
def test_renamed_port_fails_the_check(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "fpga", repo / "fpga", ignore=shutil.ignore_patterns("build"))
    shutil.copytree(REPO / "rtl", repo / "rtl")
    top = repo / "rtl" / "realm_accel.v"
    top.write_text(top.read_text().replace("array_clk", "core_clk"))
    found = tcl_check.problems(repo)
    assert any("realm_accel/array_clk is neither a port" in line for line in found)
    assert any("clock input array_clk" in line for line in found)


@needs_top
def test_moved_dma_width_fails_the_check(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "fpga", repo / "fpga", ignore=shutil.ignore_patterns("build"))
    shutil.copytree(REPO / "rtl", repo / "rtl")
    bd = repo / "fpga" / "common" / "build_bd.tcl"
    bd.write_text(
        bd.read_text().replace(
            "c_s_axis_s2mm_tdata_width [expr {32 *", "c_s_axis_s2mm_tdata_width [expr {16 *"
        )
    )
    assert any("c_s_axis_s2mm_tdata_width must be 32*N" in line for line in tcl_check.problems(repo))


@pytest.mark.parametrize("board", ["pynq-z2", "zcu104", "kv260"])
def test_board_settings(board):
    settings = tcl_check.board_settings(REPO / "fpga" / board / "board.tcl")
    assert int(settings["realm_n"]) == (8 if board == "pynq-z2" else 16)
    # the array's rated clock is the timing profile's nominal clock: one number, two files
    assert float(settings["realm_rated_mhz"]) == load_profile(board).nominal_clock_mhz


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_without_vivado_says_so_in_one_line(tmp_path):
    env = {**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"}
    if shutil.which("vivado", path=env["PATH"]):
        pytest.skip("Vivado is on PATH")
    run = subprocess.run(["make", "-s", "-C", str(REPO / "fpga")], capture_output=True, text=True, env=env)
    assert run.returncode != 0
    assert len(run.stderr.strip().splitlines()) == 1
    assert "Vivado 2024.1 is needed" in run.stderr


@needs_top
def test_packaging_sources_other_than_the_list_fails_the_check(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "fpga", repo / "fpga", ignore=shutil.ignore_patterns("build"))
    shutil.copytree(REPO / "rtl", repo / "rtl")
    package = repo / "fpga" / "common" / "package_ip.tcl"
    text = package.read_text()
    package.write_text(text.replace("[realm_filelist [file join $rtl realm_accel.f]]",
                                    "[lsort [glob [file join $rtl realm_*.v]]]"))
    found = tcl_check.problems(repo)
    assert "fpga/common/package_ip.tcl: does not add the sources rtl/realm_accel.f lists (realm_filelist)" in found
    assert "fpga/common/package_ip.tcl: names Verilog sources itself; rtl/realm_accel.f lists them" in found
    package.write_text(text)
    (repo / "rtl" / "realm_core.f").write_text("realm_core.v realm_feeder.v realm_array.f realm_drian.v\n")
    assert any("realm_core.f lists realm_drian.v, which does not exist" in line for line in tcl_check.problems(repo))


# Vivado's commands as plain Tcl stand-ins: every call is printed (fields joined by \x1f) and answered
# from the state the test sets: the board files installed per repository folder, whether the board
# store is reachable and what it holds, the frequency of the PS clock pins.
VIVADO_STANDINS = r"""
set ::params [dict create board.repoPaths {}]
proc report {args} { puts [join $args \x1f] }
proc board_parts {} {
    set parts $::builtin_parts
    foreach repo [dict get $::params board.repoPaths] {
        if {[dict exists $::repo_parts $repo]} { lappend parts {*}[dict get $::repo_parts $repo] }
    }
    return $parts
}
proc unknown {cmd args} {
    report $cmd {*}$args
    switch -- $cmd {
        version { return 2024.1 }
        create_bd_cell - get_bd_pins - get_bd_intf_pins - get_bd_cells { return [lindex $args end] }
        set_param { dict set ::params [lindex $args 0] [lindex $args 1]; return }
        get_param { return [dict get $::params [lindex $args 0]] }
        get_board_parts {
            set found [lsort -dictionary [lsearch -all -inline -glob [board_parts] [lindex $args end]]]
            return [expr {"-latest_file_version" in $args ? [lrange $found end end] : $found}]
        }
        get_property {
            lassign $args name object
            if {$name eq "LOCAL_ROOT_DIR"} { return $::store_dir }
            if {$name eq "CONFIG.FREQ_HZ"} { return $::freq_hz }
            return ""
        }
        xhub::get_xstores { return xilinx_board_store }
        xhub::refresh_catalog { if {!$::store_online} { error "Unable to connect to the board store\nsecond line" } }
        xhub::get_xitems { return [lsearch -all -inline -glob [dict keys $::store_items] [lindex $args 0]] }
        xhub::install {
            foreach item [lindex $args 0] { dict lappend ::repo_parts $::store_dir [dict get $::store_items $item] }
        }
    }
    return ""
}
rename exit tcl_exit
proc exit {{code 0}} { if {$code} { report EXIT $code }; tcl_exit 0 }
"""


@dataclass
class Vivado:
    builtin_parts: tuple = ()  # board files Vivado installs itself
    repo_parts: dict = field(default_factory=dict)  # folder -> board parts in it
    store_online: bool = False
    store_items: dict = field(default_factory=dict)  # board-store item -> the board part it installs
    freq_hz: int = 100_000_000
    store_dir: str = "/home/u/.Xilinx/Vivado/2024.1/xhub/board_store/xilinx_board_store"

    def run(self, body: str, tmp_path: Path, env: dict | None = None) -> list[list[str]]:
        """Run `body` in tclsh after the stand-ins; the calls made, each as [command, args...]."""
        repo_parts = " ".join(f"{repo} {{{' '.join(parts)}}}" for repo, parts in self.repo_parts.items())
        store_items = " ".join(f"{item} {part}" for item, part in self.store_items.items())
        state = (f"set ::builtin_parts {{{' '.join(self.builtin_parts)}}}\n"
                 f"set ::repo_parts [dict create {repo_parts}]\n"
                 f"set ::store_online {int(self.store_online)}\n"
                 f"set ::store_items [dict create {store_items}]\n"
                 f"set ::freq_hz {self.freq_hz}\nset ::store_dir {self.store_dir}\n")
        script = tmp_path / "run.tcl"
        script.write_text(VIVADO_STANDINS + state + body)
        out = subprocess.run(["tclsh", str(script)], capture_output=True, text=True, check=True,
                             env={**os.environ, **(env or {})}).stdout
        return [line.split("\x1f") for line in out.splitlines()]


needs_tclsh = pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh is not installed")
BOARD_PART_TCL = REPO / "fpga" / "common" / "board_part.tcl"


def resolve(vivado, tmp_path, board, env=None):
    """What realm_board_part answers for a board, and the calls it made."""
    settings = f"source {REPO / 'fpga' / board / 'board.tcl'}\n"
    calls = vivado.run(settings + f"source {BOARD_PART_TCL}\n"
                       f"report RESULT [realm_board_part {board} $realm_board_part $realm_board_store_item "
                       "$realm_ps_part_preset]\n", tmp_path, env)
    return calls


@needs_tclsh
def test_board_files_are_found_in_board_repo_and_the_store_folder(tmp_path):
    vivado = Vivado(repo_parts={"/opt/boards": ["tul.com.tw:pynq-z2:part0:1.0"],
                                Vivado.store_dir: ["xilinx.com:kv260_som:part0:1.3", "xilinx.com:kv260_som:part0:1.4"]})
    calls = resolve(vivado, tmp_path, "pynq-z2", {"REALM_BOARD_REPO": "/opt/boards"})
    assert ["set_param", "board.repoPaths", f"/opt/boards {Vivado.store_dir}"] in calls
    assert calls[-1] == ["RESULT", "tul.com.tw:pynq-z2:part0:1.0"]
    assert not any(c[0].startswith("xhub::install") for c in calls)
    # the newest version of those installed
    assert resolve(vivado, tmp_path, "kv260")[-1] == ["RESULT", "xilinx.com:kv260_som:part0:1.4"]


@needs_tclsh
def test_board_files_missing_are_installed_from_the_store(tmp_path):
    vivado = Vivado(store_online=True, store_items={"xilinx.com:xilinx_board_store:kv260_som:1.4":
                                                    "xilinx.com:kv260_som:part0:1.4"})
    calls = resolve(vivado, tmp_path, "kv260")
    assert ["xhub::install", "xilinx.com:xilinx_board_store:kv260_som:1.4"] in calls
    assert calls[-1] == ["RESULT", "xilinx.com:kv260_som:part0:1.4"]


@needs_tclsh
def test_without_board_files_the_pynq_z2_builds_from_its_part_and_the_kv260_stops_in_one_line(tmp_path):
    calls = resolve(Vivado(), tmp_path, "pynq-z2")
    assert calls[-1] == ["RESULT", ""]
    assert any(c[0].startswith("WARNING: realm-hil: no board files *:pynq-z2:part0:* (Unable to connect")
               for c in calls)
    calls = resolve(Vivado(), tmp_path, "kv260")
    errors = [c[0] for c in calls if c[0].startswith("ERROR")]
    assert calls[-1] == ["EXIT", "1"] and len(errors) == 1
    assert errors[0].startswith("ERROR: realm-hil: no board files *:kv260_som:part0:* for kv260, and the Vivado "
                                "board store could not install them (Unable to connect to the board store)")
    assert "BOARD_REPO=<folder>" in errors[0]


def build_bd(vivado, tmp_path, board):
    """The Vivado calls build_bd.tcl makes for a board, run in tclsh with the stand-ins."""
    body = (f"set argv [list {REPO / 'fpga' / board / 'board.tcl'} {tmp_path / 'build'} {REPO}]\n"
            f"source {REPO / 'fpga' / 'common' / 'build_bd.tcl'}\n")
    return vivado.run(body, tmp_path)


def automations(calls, rule):
    """The -config of each apply_bd_automation call with this rule, as Tcl list text."""
    return [c[c.index("-config") + 1] for c in calls if c[0] == "apply_bd_automation" and c[2] == rule]


@needs_tclsh
def test_zcu104_block_design_takes_its_clock_label_from_the_pin(tmp_path):
    vivado = Vivado(builtin_parts=("xilinx.com:zcu104:part0:1.1",), freq_hz=99_999_001)
    calls = build_bd(vivado, tmp_path, "zcu104")
    assert ["set_property", "board_part", "xilinx.com:zcu104:part0:1.1", ""] in calls
    ps, = automations(calls, "xilinx.com:bd_rule:zynq_ultra_ps_e")
    assert ps == "apply_board_preset 1"
    axi = automations(calls, "xilinx.com:bd_rule:axi4")
    assert len(axi) == 5
    for config in axi:
        for key in ("Clk_master", "Clk_slave", "Clk_xbar"):
            assert f"{key} {{/ps/pl_clk0 (99 MHz)}}" in config
    wizard, = [c for c in calls if c[0] == "set_property" and c[-1] == "clk_wiz"]
    assert "CONFIG.PRIM_IN_FREQ 99.999" in wizard[2] and "CONFIG.USE_SAFE_CLOCK_STARTUP true" in wizard[2]


@needs_tclsh
def test_pynq_z2_block_design_without_board_files_gets_the_boards_ps_settings(tmp_path):
    calls = build_bd(Vivado(), tmp_path, "pynq-z2")
    assert not any(c[:2] == ["set_property", "board_part"] for c in calls)
    ps, = automations(calls, "xilinx.com:bd_rule:processing_system7")
    assert ps.endswith("apply_board_preset 0")
    preset, = [c[2] for c in calls if c[:2] == ["set_property", "-dict"] and "PCW_UIPARAM_DDR_PARTNO" in c[2]]
    assert "CONFIG.PCW_CRYSTAL_PERIPHERAL_FREQMHZ 50" in preset and "{MIO 14 .. 15}" in preset
    assert all("Clk_master {/ps/FCLK_CLK0 (100 MHz)}" in config
               for config in automations(calls, "xilinx.com:bd_rule:axi4"))


@needs_tclsh
def test_kv260_block_design_without_board_files_stops_before_the_project(tmp_path):
    calls = build_bd(Vivado(), tmp_path, "kv260")
    assert calls[-1] == ["EXIT", "1"]
    assert not any(c[0] == "create_project" for c in calls)


@needs_top
@pytest.mark.parametrize("edit, problem", [
    (("[expr {int($safe_hz / 1000000.0)}]", "$realm_safe_mhz"), "a clock label with a fixed frequency"),
    (("    CONFIG.USE_SAFE_CLOCK_STARTUP true \\\n", ""), "lacks CONFIG.USE_SAFE_CLOCK_STARTUP true"),
    (("if {$board_part ne \"\"} {\n    set_property board_part $board_part [current_project]\n}",
      "set_property board_part $realm_board_part [current_project]"), "sets board_part to board.tcl's pattern"),
])
def test_build_bd_regressions_fail_the_check(tmp_path, edit, problem):
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "fpga", repo / "fpga", ignore=shutil.ignore_patterns("build"))
    shutil.copytree(REPO / "rtl", repo / "rtl")
    bd = repo / "fpga" / "common" / "build_bd.tcl"
    text = bd.read_text()
    assert edit[0] in text
    bd.write_text(text.replace(edit[0], edit[1]))
    assert any(problem in line for line in tcl_check.problems(repo))


@needs_top
def test_a_readme_clock_that_differs_from_the_board_fails_the_check(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "fpga", repo / "fpga", ignore=shutil.ignore_patterns("build"))
    shutil.copytree(REPO / "rtl", repo / "rtl")
    readme = repo / "fpga" / "README.md"
    readme.write_text(readme.read_text().replace("| 16 | 100 MHz | 200 MHz |", "| 16 | 100 MHz | 250 MHz |"))
    assert "fpga/README.md: the zcu104 row says realm_rated_mhz 250, board.tcl 200" in tcl_check.problems(repo)


@pytest.mark.parametrize("board", ["pynq-z2", "zcu104", "kv260"])
def test_readme_table_is_the_profiles(board):
    row = tcl_check.readme_boards(REPO / "fpga" / "README.md")[board]
    assert float(row["realm_rated_mhz"]) == load_profile(board).nominal_clock_mhz


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_hands_board_repo_to_vivado(tmp_path):
    shutil.copytree(REPO / "fpga", tmp_path / "fpga", ignore=shutil.ignore_patterns("build"))
    shutil.copytree(REPO / "rtl", tmp_path / "rtl")
    vivado = tmp_path / "vivado"
    vivado.write_text('#!/bin/sh\necho "board files in: $REALM_BOARD_REPO"\nexit 3\n')
    vivado.chmod(0o755)
    for args, env, repo in ((["BOARD_REPO=/opt/boards"], {}, "/opt/boards"),
                            ([], {"REALM_BOARD_REPO": "/srv/boards"}, "/srv/boards")):
        run = subprocess.run(["make", "-s", "-C", str(tmp_path / "fpga"), f"VIVADO={vivado}", *args],
                             capture_output=True, text=True, env={**os.environ, **env})
        assert run.returncode != 0 and f"board files in: {repo}\n" in run.stdout
