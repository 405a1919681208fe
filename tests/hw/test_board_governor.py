"""The governor on a board, through the real clocking path (the Clocking Wizard behind pynq).

Without --board it runs on the simulated PYNQ.remote ZCU104 (tests/hw/conftest.py). Coarse steps and
one-GEMM windows keep it to a few GEMMs on the slow simulated board.
"""

import numpy as np
import pytest
from test_board_smoke import operands, oracle, wizard_mhz, wizard_registers

from realm_hil.abft.recovery import ProtectedGemm
from realm_hil.governor import Governor, GovernorConfig, govern, governed
from realm_hil.timing.device_profile import load_profile

pytestmark = pytest.mark.hw

CONFIG = GovernorConfig(window_gemms=1, step=0.05, calm_windows=1)


def test_governor_climbs_until_errors_and_backs_off_on_the_board(board):
    profile = load_profile(board.name)
    nominal = profile.nominal_clock_mhz
    rng = np.random.default_rng(7)
    gemms = [(*operands(rng, 64, 256, 64), None) for _ in range(12)]
    with board.open() as acc:
        at_nominal = wizard_registers(board)
        protected = ProtectedGemm(acc, "classic", measure=True)
        trace = govern(protected, iter(gemms), CONFIG, board.name)
        assert wizard_registers(board) == at_nominal and acc.clock_mhz == pytest.approx(nominal, rel=1e-6)
    clocks = [r.clock_mhz for r in trace]
    assert clocks[0] == nominal and max(clocks) > nominal
    backoffs = [r for r in trace if r.decision == "back off"]
    assert backoffs, f"no back-off up to {max(clocks)} MHz"
    # the windows it backed off on had real errors (the oracle, which the governor does not read), all recovered
    assert all(r.flagged > CONFIG.budget * r.tiles for r in backoffs)
    assert sum(r.escaped for r in trace) == 0 and sum(r.recomputed for r in trace) > 0


def test_governor_restores_the_rated_clock_on_interrupt(board):
    rng = np.random.default_rng(9)
    x, w = operands(rng, 16, 64, 16)
    with board.open() as acc:
        at_nominal = wizard_registers(board)
        protected = ProtectedGemm(acc, "classic")
        with pytest.raises(KeyboardInterrupt):
            with governed(protected, Governor(CONFIG, board.name), 1, board.name) as engine:
                for _ in range(3):
                    engine.gemm(x, w)
                assert wizard_registers(board) != at_nominal
                raise KeyboardInterrupt
        assert wizard_registers(board) == at_nominal
        assert wizard_mhz(at_nominal) == pytest.approx(load_profile(board.name).nominal_clock_mhz, rel=1e-6)
        np.testing.assert_array_equal(acc.gemm(x, w).y, oracle(x, w))
