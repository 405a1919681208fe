"""yosys resource estimates of realm_accel (FPGA configuration: TIMING_EMU=0, INJECT=0)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from realm_hil.fpga import resources
from realm_hil.fpga.resources import Resources

REPO = Path(__file__).resolve().parents[2]


def test_primitive_counting():
    cells = Counter(
        {
            "LUT2": 10,
            "LUT6": 5,
            "RAM32M": 2,
            "SRL16E": 3,
            "FDRE": 7,
            "FDPE": 1,
            "DSP48E1": 4,
            "RAMB18E1": 3,
            "RAMB36E1": 1,
            "CARRY4": 9,
        }
    )
    res = Resources.from_cells(cells)
    assert res == Resources(lut=15 + 8 + 3, lutram=11, ff=8, dsp=4, ramb18=3, ramb36=1)
    assert res.bram36 == 2.5


def test_fits_pynq_z2_limits():
    assert Resources(lut=53_200, lutram=0, ff=106_400, dsp=220, ramb18=0, ramb36=140).fits("pynq-z2")
    assert not Resources(lut=1, lutram=0, ff=1, dsp=221, ramb18=0, ramb36=0).fits("pynq-z2")
    assert not Resources(lut=1, lutram=0, ff=1, dsp=1, ramb18=1, ramb36=140).fits("xc7z020")


def test_hierarchy_totals_multiply_instances():
    modules = {
        "\\top": {"num_cells_by_type": {"$paramod\\sub\\N=8": 3, "FDRE": 1}},
        "$paramod\\sub\\N=8": {"num_cells_by_type": {"DSP48E1": 1, "LUT3": 2}},
    }
    totals = resources._totals(modules)
    assert totals["\\top"] == Counter({"DSP48E1": 3, "LUT3": 6, "FDRE": 1})
    assert resources._base_name("$paramod$0123abcd\\realm_core") == "realm_core"


@pytest.mark.sim
@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys is not installed")
@pytest.mark.skipif(
    not (REPO / "rtl" / "realm_accel.v").exists(), reason="rtl/realm_accel.v does not exist yet"
)
def test_full_top_fits_pynq_z2_at_n8():
    report = resources.measure(8)
    assert report.array.dsp >= 64  # one multiplier per PE
    assert report.checking.lut > 0 and report.top.lut >= report.array.lut + report.checking.lut
    assert report.fits("pynq-z2"), report.top.utilisation("pynq-z2")
    assert report.problems == (), "Vivado rejects multi-driven nets: " + "; ".join(report.problems)


def test_instances_count_through_the_hierarchy():
    modules = {
        "\\top": {"num_cells_by_type": {"\\core": 1, "\\fifo": 2}},
        "\\core": {"num_cells_by_type": {"\\pe": 4}},
        "\\pe": {"num_cells_by_type": {"DSP48E1": 1}},
        "\\fifo": {"num_cells_by_type": {"RAM32M": 1}},
    }
    assert resources._instances(modules) == Counter({"\\top": 1, "\\core": 1, "\\fifo": 2, "\\pe": 4})
