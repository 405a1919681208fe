"""The Vivado scripts in fpga/ agree with rtl/realm_accel.v and rtl/regmap.yaml (no Vivado needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
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
