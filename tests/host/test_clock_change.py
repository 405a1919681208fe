"""A clock change on a board waits for the Clocking Wizard to relock and resets the array side before it returns.

The board is the simulated ZCU104 behind pynq's PYNQ.remote client (sim/pynq_remote_server.py); its
Clocking Wizard follows PG065 v6.0 at the register level in board time (sim/clock_wizard.py): SEN
drops LOCKED a few cycles later (reads before that still show the old lock), LOCKED returns once the
MMCM has relocked, and the array loses what it holds while its clock is stopped until the host resets
it with the clock running. The host side is the real board backend: BoardClock, ClockWizard, AccelDriver.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import realm_hil
from realm_hil.cli.main import cli
from realm_hil.clock_generators import CLKWIZ_CFG0, CLKWIZ_CLKOUT0_DIV, CLKWIZ_LOAD, CLKWIZ_STATUS, WizardLockError
from realm_hil.driver import IncompatibleAccelerator
from realm_hil.sim.clock_wizard import ACCESS_CYCLES, ClockWizardModel, WizardTiming
from realm_hil.sim.overlay import SimBoardConfig, write_sim_overlay
from realm_hil.sim.pynq_remote_server import PS_REGISTERS, PynqRemoteServer, SimBoard
from realm_hil.tiling import int32_gemm

pytestmark = pytest.mark.sim

CONFIG = SimBoardConfig("zcu104", array_n=8, seed=5)
NOMINAL = 200.0  # the zcu104 profile's nominal clock
PL0_REF_CTRL = (0xFF5E_0000, 0xC0)  # CRL_APB: the PS clock FCLK0 (pl_clk0)


@dataclass
class Served:
    address: str
    manifest: Path
    board: SimBoard

    def open(self):
        return realm_hil.open_accelerator("board", address=f"pynq://{self.address}", board_name=CONFIG.board,
                                          manifest=self.manifest)


@pytest.fixture
def serve(tmp_path):
    """serve(timing=..., config=...) -> a simulated board with that wizard, served until the test ends."""
    started = []

    def start(timing: WizardTiming | None = None, config: SimBoardConfig = CONFIG) -> Served:
        manifest = write_sim_overlay(tmp_path / f"overlay{len(started)}", config)
        board = SimBoard(config, timing)
        server = PynqRemoteServer(board, "127.0.0.1:0")
        started.append((server, board))
        return Served(server.address, manifest, board)

    yield start
    for server, board in started:
        server.close()
        board.close()


def operands(seed, m=24, k=200, n=17):
    rng = np.random.default_rng(seed)
    return (rng.integers(-128, 128, size=(m, k), dtype=np.int8),
            rng.integers(-128, 128, size=(k, n), dtype=np.int8))


def since_last_load(events):
    events = list(events)
    last = max(i for i, event in enumerate(events) if event[0] == "load")
    return events[last:]


def test_a_clock_change_waits_for_the_drop_and_the_relock_then_resets_the_array(serve):
    # the drop comes three wizard accesses after SEN: the host's first status reads still see the old lock
    served = serve(WizardTiming(drop_cycles=3 * ACCESS_CYCLES, lock_cycles=2000))
    x, w = operands(1)
    with served.open() as acc:
        for target in (NOMINAL * 1.08, NOMINAL, NOMINAL * 0.9, NOMINAL):
            reached = acc.set_clock(target)
            assert reached == pytest.approx(target, rel=0.01) and served.board.wizard.mhz == reached
            (_, loaded, mhz), *after = since_last_load(served.board.events)
            assert mhz == reached
            (_, dropped, _), = [e for e in after if e[0] == "drop"]
            (_, relocked, _), = [e for e in after if e[0] == "lock"]
            statuses = [(t, value) for kind, t, value in after if kind == "status"]
            assert [v for t, v in statuses if t < dropped] and all(v == 1 for t, v in statuses if t < dropped)
            assert any(v == 0 for t, v in statuses if dropped <= t < relocked)  # the drop was seen
            resets = [(t, locked) for kind, t, locked in after if kind == "array_reset"]
            # one reset of the array side, after the relock, with the clock running
            assert len(resets) == 1 and resets[0][0] >= relocked and resets[0][1]
            if target == NOMINAL:
                result = acc.gemm(x, w)
                assert np.array_equal(result.y, int32_gemm(x, w)) and result.stats.tiles_err == 0


def test_a_drop_too_quick_to_see_is_waited_out(serve):
    """Over a slow link (PYNQ.remote) the whole relock fits between two reads: the host must not wait for a drop."""
    served = serve(WizardTiming(drop_cycles=0, lock_cycles=0))
    x, w = operands(2)
    with served.open() as acc:
        reached = acc.set_clock(NOMINAL * 1.1)
        assert served.board.wizard.mhz == reached == pytest.approx(NOMINAL * 1.1, rel=0.01)
        assert all(value == 1 for kind, _, value in since_last_load(served.board.events) if kind == "status")
        acc.set_clock(NOMINAL)
        assert np.array_equal(acc.gemm(x, w).y, int32_gemm(x, w))


def test_a_wizard_that_never_relocks_is_one_line_and_the_nominal_clock_comes_back(serve):
    served = serve(WizardTiming(fails_above_mhz=NOMINAL * 1.05))
    x, w = operands(3)
    with served.open() as acc:
        with pytest.raises(WizardLockError) as exc:
            acc.set_clock(NOMINAL * 1.1)
        message = str(exc.value)
        assert "\n" not in message and "did not lock at 220" in message
        assert message.endswith("the nominal 200 MHz is restored")
        assert acc.clock_mhz == served.board.wizard.mhz == NOMINAL
        result = acc.gemm(x, w)
        assert np.array_equal(result.y, int32_gemm(x, w)) and result.stats.tiles_err == 0


def test_a_dead_wizard_says_to_reload_the_overlay(serve):
    served = serve()
    acc = served.open()
    served.board.wizard.timing = WizardTiming(fails_above_mhz=0.0)  # the MMCM stops locking at all
    try:
        with pytest.raises(WizardLockError) as exc:
            acc.set_clock(NOMINAL * 1.1)
        assert "\n" not in str(exc.value) and str(exc.value).endswith("download the overlay again (reopen the board) "
                                                                      "to restart it")
        assert served.board.wizard.mhz is None
    finally:
        with pytest.raises(WizardLockError):
            acc.close()  # restoring the nominal clock fails loudly too
    served.board.wizard.timing = WizardTiming()
    with served.open() as acc:  # a download configures the wizard afresh
        x, w = operands(4)
        assert acc.clock_mhz == NOMINAL and np.array_equal(acc.gemm(x, w).y, int32_gemm(x, w))


def test_an_overlay_without_the_wizard_is_refused_and_the_ps_clock_left_alone(serve):
    served = serve(config=SimBoardConfig(CONFIG.board, array_n=8, clock_wizard=False))
    base, offset = PL0_REF_CTRL
    before = PS_REGISTERS[base][offset]
    with pytest.raises(IncompatibleAccelerator) as exc:
        served.open()
    assert "\n" not in str(exc.value)
    assert "no Clocking Wizard 'clk_wiz'" in str(exc.value) and "will not move the PS clock FCLK0" in str(exc.value)
    mmio = served.board.map(base + offset, 4)
    assert served.board.read_register(mmio, 0, 4) == before
    result = CliRunner().invoke(cli, ["run", "--board", f"pynq://{served.address}", "--board-name", CONFIG.board,
                                      "--manifest", str(served.manifest)])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "will not move the PS clock FCLK0" in result.output


class BoardTime:
    cycles = 0


def test_the_wizard_model_follows_pg065():
    """The model itself: the status register around SEN, SADDR choosing registers or the built setting."""
    clock, events, drops = BoardTime(), [], []
    wizard = ClockWizardModel(lambda: clock.cycles, lambda: drops.append(clock.cycles), events,
                              WizardTiming(drop_cycles=100, lock_cycles=1000))
    wizard.power_up(200.0)
    built = (wizard.read(CLKWIZ_CFG0), wizard.read(CLKWIZ_CLKOUT0_DIV))
    # 300 MHz from 100 MHz: D = 1, M = 12 (VCO 1200 MHz), O = 4
    wizard.write(CLKWIZ_CFG0, 1 | 12 << 8)
    wizard.write(CLKWIZ_CLKOUT0_DIV, 4)
    assert wizard.mhz == 200.0 and wizard.read(CLKWIZ_STATUS) == 1  # nothing happens before SEN
    clock.cycles = 10_000
    wizard.write(CLKWIZ_LOAD, 0x3)
    assert wizard.read(CLKWIZ_STATUS) == 1  # 32 cycles after SEN: still the old lock
    clock.cycles += 100
    assert wizard.read(CLKWIZ_STATUS) == 0 and wizard.mhz is None and len(drops) == 1
    clock.cycles += 900
    assert wizard.read(CLKWIZ_STATUS) == 0
    clock.cycles += 100
    assert wizard.read(CLKWIZ_STATUS) == 1 and wizard.mhz == 300.0
    # SEN without SADDR loads the setting the design was built with
    wizard.write(CLKWIZ_LOAD, 0x1)
    clock.cycles += 2000
    assert wizard.read(CLKWIZ_STATUS) == 1 and wizard.mhz == 200.0 and len(drops) == 2
    assert (wizard.read(CLKWIZ_CFG0), wizard.read(CLKWIZ_CLKOUT0_DIV)) == (1 | 12 << 8, 4)  # registers keep theirs
    assert built != (1 | 12 << 8, 4)
    # a setting the MMCM cannot run: LOCKED never returns, until a runnable one is loaded
    wizard.timing = WizardTiming(drop_cycles=100, lock_cycles=1000, fails_above_mhz=250.0)
    wizard.write(CLKWIZ_LOAD, 0x3)
    clock.cycles += 1_000_000
    assert wizard.read(CLKWIZ_STATUS) == 0 and wizard.mhz is None
    wizard.write(CLKWIZ_LOAD, 0x1)
    clock.cycles += 2000
    assert wizard.read(CLKWIZ_STATUS) == 1 and wizard.mhz == 200.0
    assert [kind for kind, *_ in events if kind != "status"] == ["load", "drop", "lock", "load", "drop", "lock",
                                                                 "load", "drop", "load", "lock"]
