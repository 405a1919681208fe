"""Building and caching the Verilated accelerator library, and its waveform option."""

import numpy as np
import pytest

from realm_hil import regmap
from realm_hil.sim import build as sim_build
from realm_hil.sim.binding import SimModel, WaveOptions
from realm_hil.sim.build import SimBuildError
from realm_hil.tiling import pack_tiles, plan_for, tile_operands

pytestmark = pytest.mark.sim


def test_second_open_reuses_the_cached_library():
    first = SimModel(8)
    first.close()
    second = SimModel(8)
    try:
        assert not second.build.built
        assert second.build.library == first.build.library
        assert second.build.seconds < 2.0
        assert second.axil_read(0) != 0
    finally:
        second.close()


def test_emulated_checks_are_their_own_build():
    assert sim_build.build_key(8) != sim_build.build_key(8, emu_checks=True)
    plain, checked = SimModel(8), SimModel(8, emu_checks=True)
    try:
        assert plain.build.library != checked.build.library
        assert not plain.axil_read(regmap.PARAMS) >> regmap.PARAMS_EMU_CHECKS[1] & 1
        assert checked.axil_read(regmap.PARAMS) >> regmap.PARAMS_EMU_CHECKS[1] & 1
    finally:
        plain.close()
        checked.close()


def test_bad_rtl_raises_one_line_error_naming_the_log(tmp_path, monkeypatch):
    monkeypatch.setenv("REALM_HIL_CACHE", str(tmp_path / "cache"))
    rtl = tmp_path / "rtl"
    rtl.mkdir()
    (rtl / "realm_accel.v").write_text("module realm_accel(input wire aclk); this is not verilog endmodule\n")
    with pytest.raises(SimBuildError) as excinfo:
        sim_build.build(8, rtl_dir=rtl)
    message = str(excinfo.value)
    assert "\n" not in message
    log = message.rsplit("see ", 1)[1]
    assert log.endswith("build.log")
    assert "Error" in open(log).read()


def test_waveform_of_one_tile(tmp_path):
    x = np.ones((16, 3), dtype=np.int8)
    w = np.ones((3, 8), dtype=np.int8)
    plan = plan_for(x, w, 8)
    stream = np.zeros(plan.count * plan.in_tile_bytes, dtype=np.uint8)
    pack_tiles(stream, tile_operands(x, w, plan), plan, 0, plan.count)
    out = np.zeros(plan.count * plan.out_tile_bytes, dtype=np.uint8)
    fst = tmp_path / "tile1.fst"
    model = SimModel(8, waves=WaveOptions(fst, tag=1))
    try:
        assert model.raw(stream, out) == out.nbytes
    finally:
        model.close()
    assert fst.stat().st_size > 0
    assert (out.view("<i4").reshape(plan.count, plan.out_tile_beats, 8)[:, :8] == 3).all()
