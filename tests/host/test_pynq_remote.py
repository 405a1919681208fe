"""pynq's own PYNQ.remote client (RemoteDevice) driving the simulated ZU board over loopback gRPC.

The server implements pynq's shipped protobuf services over the Verilated accelerator; the client side
is the unmodified pynq RemoteDevice, Overlay and DMA driver under the board backend. None of it needs
PYNQ_REMOTE_DEVICES at pynq's import, so the client runs in this process whatever was imported before.
"""

import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import realm_hil
from realm_hil.cli.main import cli
from realm_hil.errors import BackendUnavailable, InputError
from realm_hil.experiment import RunConfig
from realm_hil.fpga.manifest import ManifestError
from realm_hil.operating_point import OperatingPoint
from realm_hil.sim.overlay import SimBoardConfig, write_sim_overlay
from realm_hil.sim.pynq_remote_server import PynqRemoteServer, SimBoard
from realm_hil.stats import PolicyConfig
from realm_hil.tiling import int32_gemm

# A test run started as a background job hands its children SIGINT ignored; a terminal's Ctrl-C
# reaches a foreground server with the default handler, which is what these tests play.
SERVE_WITH_CTRL_C = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from realm_hil.cli.serve import serve; serve()"
)

pytestmark = pytest.mark.sim

CONFIG = SimBoardConfig("zcu104", array_n=8, seed=3)
NOMINAL = 200.0  # the zcu104 profile's nominal clock


@dataclass(frozen=True)
class Served:
    address: str
    manifest: Path
    board: SimBoard


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    manifest = write_sim_overlay(tmp_path_factory.mktemp("overlay"), CONFIG)
    board = SimBoard(CONFIG)
    try:
        with PynqRemoteServer(board, "127.0.0.1:0") as server:
            yield Served(server.address, manifest, board)
    finally:
        board.close()


def open_board(served, address=None, **options):
    options = {"board_name": CONFIG.board, "manifest": served.manifest, **options}
    return realm_hil.open_accelerator("board", address=address or f"pynq://{served.address}", **options)


def operands(rng, m, k, n):
    return (rng.integers(-128, 128, size=(m, k), dtype=np.int8),
            rng.integers(-128, 128, size=(k, n), dtype=np.int8))


def assert_same_stats(remote, local):
    assert remote.tile_grid == local.tile_grid
    assert remote.tiles.equals(local.tiles)
    assert remote.totals() == local.totals()


def closed_port():
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]


def test_gemms_are_bit_exact_with_the_reference(served):
    rng = np.random.default_rng(11)
    policy = PolicyConfig.from_floats("statistical", alpha=0.5, beta=2.0, freq_min=2)
    shapes = [(1, 1, 1), (8, 8, 8), (3, 300, 5)] + [tuple(rng.integers(1, 120, 3)) for _ in range(5)]
    # no board name: the board's own, "ZCU104"
    with open_board(served, board_name=None) as acc, realm_hil.open_accelerator("reference") as ref:
        info = acc.info()
        assert (info["backend"], info["array_n"], info["clock_mhz"]) == ("board", 8, NOMINAL)
        assert info["remote"] == f"pynq://{served.address}"
        acc.set_policy(policy)
        ref.set_policy(policy)
        for m, k, n in shapes:
            x, w = operands(rng, m, k, n)
            result = acc.gemm(x, w)
            assert result.y.dtype == np.int32 and np.array_equal(result.y, int32_gemm(x, w))
            assert_same_stats(result.stats, ref.gemm(x, w).stats)


def test_overclock_matches_the_local_simulation_and_close_restores_nominal(served):
    board = served.board
    x, w = operands(np.random.default_rng(12), 40, 512, 24)
    with open_board(served) as acc, realm_hil.open_accelerator("sim", profile=CONFIG.board, seed=CONFIG.seed) as sim:
        assert acc.clock_mhz == board.clock.point.clock_mhz == board.wizard.mhz == NOMINAL
        with pytest.raises(ValueError, match="safety ceiling"):
            acc.set_clock(450)
        assert board.wizard.mhz == NOMINAL
        # the wizard's nearest setting, read back from its registers on the far side
        applied = acc.set_clock(263.3)
        assert applied != 263.3 and abs(applied - 263.3) < 0.5
        assert applied == acc.clock_mhz == board.wizard.mhz == board.clock.point.clock_mhz
        sim.set_clock(applied)
        on_board, here = acc.gemm(x, w), sim.gemm(x, w)
        assert np.array_equal(on_board.y, here.y) and not np.array_equal(here.y, int32_gemm(x, w))
        assert on_board.stats.tiles_err > 0
        assert_same_stats(on_board.stats, here.stats)
    assert board.clock.point.clock_mhz == board.wizard.mhz == NOMINAL
    with open_board(served) as acc:
        x, w = operands(np.random.default_rng(13), 17, 64, 9)
        assert np.array_equal(acc.gemm(x, w).y, int32_gemm(x, w))


def test_a_board_refuses_a_supply_voltage_in_one_line_and_keeps_its_clock(served):
    """A board's supply is not the host's to set: asked for a voltage it says so, and nothing changes."""
    board = served.board
    with open_board(served) as acc:
        applied = acc.set_clock(230.0)
        for point in (OperatingPoint(applied, 0.8), OperatingPoint(NOMINAL, 0.8)):
            with pytest.raises(InputError) as exc:
                acc.set_operating_point(point)
            assert "supply voltage cannot be set from the host on a board" in str(exc.value)
            assert "\n" not in str(exc.value)
            assert acc.operating_point == OperatingPoint(applied) and board.wizard.mhz == applied
    with pytest.raises(InputError, match="board backend takes address, board_name, manifest, token; not voltage_v"):
        open_board(served, voltage_v=0.8)


def test_unreachable_server_bad_address_and_wrong_board(served):
    port = closed_port()
    start = time.monotonic()
    with pytest.raises(BackendUnavailable, match=rf"cannot reach the PYNQ.remote server at pynq://127.0.0.1:{port}: "
                                                 "connection refused"):
        open_board(served, f"pynq://127.0.0.1:{port}")
    assert time.monotonic() - start < 2
    for bad in ("pynq://", "pynq://board:http", "pynq://board:70000"):
        with pytest.raises(ValueError, match=r"pynq://HOST\[:PORT\]"):
            open_board(served, bad)
    with pytest.raises(BackendUnavailable, match="is a ZCU104 board, not kv260; pass --board-name zcu104"):
        open_board(served, board_name="kv260")
    with pytest.raises(ValueError, match="`realm-hil serve` loads its own"):
        RunConfig(backend="board", board_address="board:7788", board_name="zcu104")

    runner = CliRunner()
    for args, message in ((["--board", f"pynq://127.0.0.1:{port}"], "cannot reach the PYNQ.remote server"),
                          (["--board", f"pynq://{served.address}", "--board-name", "kv260"], "not kv260")):
        result = runner.invoke(cli, ["run", *args])
        assert result.exit_code == 2
        assert result.output.startswith("realm-hil: error: ") and message in result.output
        assert result.output.count("\n") == 1, result.output


def test_overlay_is_checked_before_and_by_the_board(served, tmp_path):
    shutil.copytree(served.manifest.parent, tmp_path / "tampered")
    bit = tmp_path / "tampered" / CONFIG.board / "realm_hil.bit"
    bit.write_bytes(bit.read_bytes()[:-4] + b"\x00\x00\x00\x01")
    with pytest.raises(ManifestError, match="corrupt or replaced"):
        open_board(served, manifest=tmp_path / "tampered" / "manifest.json")
    # a well-formed overlay of another design: the manifest passes it, the board refuses to program it
    other = write_sim_overlay(tmp_path / "other", SimBoardConfig(CONFIG.board, array_n=16))
    with pytest.raises(BackendUnavailable, match="not the overlay of this simulated zcu104"):
        open_board(served, manifest=other)


def test_pynq_remote_devices_names_the_board_after_pynq_was_imported(served, monkeypatch):
    # pynq reads the variable at import (long done here) and cannot take a port; realm-hil can
    monkeypatch.setenv("PYNQ_REMOTE_DEVICES", served.address)
    with realm_hil.open_accelerator("board", manifest=served.manifest) as acc:
        assert acc.info()["remote"] == f"pynq://{served.address}"
        x, w = operands(np.random.default_rng(14), 9, 30, 11)
        assert np.array_equal(acc.gemm(x, w).y, int32_gemm(x, w))


def test_pynq_selftest_passes_against_the_sim_server(served, capsys):
    from pynq.remote.selftest.runner import main

    host, port = served.address.rsplit(":", 1)
    assert main(["--ip", host, "--port", port]) == 0
    out = capsys.readouterr().out
    assert "buffer intact after host->target->host" in out and "file survived the round-trip" in out


def test_serve_command_simulates_a_board_until_ctrl_c(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE_WITH_CTRL_C, "--pynq-remote",
         "--bind", "127.0.0.1:0", "--seed", str(CONFIG.seed), "--overlay-dir", str(tmp_path)],
        stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(10):  # python may warn about something first
            line = proc.stderr.readline()
            if "on the workstation:" in line:
                break
        words = line.split()
        address, manifest = words[words.index("--board") + 1], Path(words[words.index("--manifest") + 1])
        assert manifest == tmp_path / "manifest.json"
        acc = realm_hil.open_accelerator("board", address=address, board_name="zcu104", manifest=manifest)
        with acc:
            x, w = operands(np.random.default_rng(15), 20, 70, 10)
            assert np.array_equal(acc.gemm(x, w).y, int32_gemm(x, w))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopped" in err


def test_serve_command_refuses_options_of_the_other_mode(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["serve", "--pynq-remote", "--bind", "127.0.0.1:0", "--backend", "sim"])
    assert result.exit_code == 2 and "--backend only applies to a realm-hil server" in result.output
    result = runner.invoke(cli, ["serve", "--bind", "127.0.0.1:0", "--board-name", "kv260", "--overlay-dir",
                                 str(tmp_path)])
    assert result.exit_code == 2 and "--board-name, --overlay-dir only applies to --pynq-remote" in result.output
