import os
import signal
import time

import pytest

from realm_hil.clock_generators import (
    CLKWIZ_CFG0,
    CLKWIZ_CLKOUT0_DIV,
    MMCM_7SERIES,
    MMCM_ULTRASCALE_PLUS,
    NominalClockGuard,
    mmcm_setting,
    setting_from_registers,
)


@pytest.mark.parametrize("limits", [MMCM_7SERIES, MMCM_ULTRASCALE_PLUS])
@pytest.mark.parametrize("target", [50.0, 100.0, 111.1, 119.5, 125.0, 137.3, 142.9, 160.0, 199.9, 250.0, 400.0])
def test_mmcm_setting_is_legal_and_close(limits, target):
    setting = mmcm_setting(target, 100.0, limits)
    vco = 100.0 * float(setting.mult) / setting.divclk
    assert limits.vco_min <= vco <= limits.vco_max
    assert 2 <= setting.mult <= 64 and 1 <= setting.out_div <= 128
    assert (setting.mult * 8).denominator == 1 and (setting.out_div * 8).denominator == 1
    assert abs(setting.output_mhz - target) / target < 0.002


def test_register_encoding_round_trips():
    for target in (101.3, 123.4, 147.7, 188.8):
        setting = mmcm_setting(target, 100.0, MMCM_7SERIES)
        regs = setting.registers()
        decoded = setting_from_registers(regs[CLKWIZ_CFG0], regs[CLKWIZ_CLKOUT0_DIV], 100.0)
        assert decoded == setting


def test_bad_target():
    with pytest.raises(ValueError, match="positive"):
        mmcm_setting(0, 100.0, MMCM_7SERIES)


def test_guard_restores_on_ctrl_c_and_reraises():
    restored = []
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the test run was started as a background job
    signal.signal(signal.SIGINT, signal.default_int_handler)
    guard = NominalClockGuard(lambda: restored.append(True))
    guard.arm()
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)  # the handler runs here and raises
    assert restored == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    guard.restore()
    assert restored == [True]
    signal.signal(signal.SIGINT, before)


def test_guard_restore_once():
    restored = []
    guard = NominalClockGuard(lambda: restored.append(1))
    guard.arm()
    guard.restore()
    guard.restore()
    assert restored == [1]
