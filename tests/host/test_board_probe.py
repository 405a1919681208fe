"""What a board user meets first, as one line: a pynq that does not recognize the board, not root, which board.

The probe runs the installed pynq (4.0 here, the same probe as 3.1): its EmbeddedDevice finds an FPGA
manager and, with no /proc/device-tree/chosen/pynq_board on this machine, never imported pyxrt, exactly
the state of a Kria-PYNQ device tree under pynq 3.1+.
"""

from __future__ import annotations

import pynq
import pytest
from click.testing import CliRunner
from pynq.pl_server.embedded_device import EmbeddedDevice
from pynq.pl_server.xrt_device import XrtDevice

import realm_hil
from realm_hil.backends import board
from realm_hil.cli.main import cli
from realm_hil.errors import BackendUnavailable
from realm_hil.fpga.manifest import ManifestError


@pytest.fixture
def fresh_probe(monkeypatch):
    """pynq probes once per process and keeps the result on Device: probe afresh, then put it back."""
    saved = {name: vars(pynq.Device)[name] for name in ("_devices", "_active_device") if name in vars(pynq.Device)}
    for name in saved:
        delattr(pynq.Device, name)
    yield
    for name in ("_devices", "_active_device"):
        if name in vars(pynq.Device):
            delattr(pynq.Device, name)
    for name, value in saved.items():
        setattr(pynq.Device, name, value)


@pytest.fixture
def fpga_manager(tmp_path, monkeypatch, fresh_probe):
    """This machine as a board: an FPGA manager for pynq's probe and for realm-hil's root check."""
    firmware = tmp_path / "firmware"
    firmware.write_text("")
    monkeypatch.setattr(EmbeddedDevice, "BS_FPGA_MAN", str(firmware))
    monkeypatch.setattr(board, "FPGA_MANAGER", firmware)
    return firmware


def one_line_error(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_pynq_without_the_board_in_the_device_tree_is_one_line(fpga_manager):
    assert not pynq.ps.ON_TARGET, "this machine's device tree must not name a PYNQ board"
    with pytest.raises(NameError, match="pyxrt"):  # what the unguarded probe does
        list(pynq.Device.devices)
    del pynq.Device._devices
    with pytest.raises(BackendUnavailable, match=r"pynq \S+ does not recognize this board: .*chosen/pynq_board.*"
                                                 r"pip install pynq==3.0.1"):
        board.find_pynq_devices()
    line = one_line_error("gemm", "--backend", "board")
    assert "does not recognize this board" in line and "Traceback" not in line


def test_another_name_error_stays_a_bug(fpga_manager, monkeypatch):
    def broken(self):
        raise NameError("name 'handle' is not defined")

    monkeypatch.setattr(XrtDevice, "_get_handle", broken)
    with pytest.raises(NameError, match="handle"):
        board.find_pynq_devices()


@pytest.mark.parametrize("refusal", [PermissionError(13, "Permission denied", "/dev/dri/renderD128"),
                                     OSError("Root permissions required.")])
def test_pynq_refusing_for_want_of_root_is_one_line(fpga_manager, monkeypatch, refusal):
    def probe(cls):
        raise refusal

    monkeypatch.setattr(EmbeddedDevice, "_probe_", classmethod(probe))
    with pytest.raises(BackendUnavailable, match=r"pynq needs root .*\(sudo -i"):
        board.find_pynq_devices()
    assert "sudo -i" in one_line_error("gemm", "--backend", "board")


def test_loading_the_overlay_as_a_user_is_one_line(fpga_manager, monkeypatch):
    """Past the probe, pynq writes the bitstream to the FPGA manager: refused without root."""
    monkeypatch.setenv("BOARD", "Pynq-Z2")
    monkeypatch.setattr(board, "find_pynq_devices", lambda: [])

    def download(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/sys/class/fpga_manager/fpga0/flags")

    monkeypatch.setattr("realm_hil.backends.pynq_backend.open_overlay", download)
    line = one_line_error("gemm", "--backend", "board")
    assert "Permission denied (/sys/class/fpga_manager/fpga0/flags): pynq needs root" in line


def test_not_root_on_a_board_is_said_before_pynq_probes(fpga_manager, monkeypatch):
    monkeypatch.setattr(board.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(EmbeddedDevice, "_probe_", classmethod(lambda cls: pytest.fail("probed as a user")))
    with pytest.raises(BackendUnavailable, match="^not root: pynq needs root"):
        board.find_pynq_devices()


@pytest.mark.parametrize(("reported", "name"), [("Pynq-Z2", "pynq-z2"), ("ZCU104", "zcu104"), ("KV260", "kv260")])
def test_the_board_name_is_the_one_the_image_reports(monkeypatch, tmp_path, reported, name):
    monkeypatch.setenv("BOARD", reported)
    monkeypatch.setattr(board, "DEVICE_TREE_BOARD", tmp_path / "absent")
    assert board.board_name_here() == name


def test_without_board_the_device_tree_names_it(monkeypatch, tmp_path):
    dt = tmp_path / "pynq_board"
    dt.write_bytes(b"ZCU104\0")
    monkeypatch.setattr(board, "DEVICE_TREE_BOARD", dt)
    for unset in (None, "Unknown"):  # the image's boardname.sh exports Unknown when it found no name
        if unset is None:
            monkeypatch.delenv("BOARD", raising=False)
        else:
            monkeypatch.setenv("BOARD", unset)
        assert board.board_name_here() == "zcu104"


def test_an_unknown_or_unnamed_board_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(board, "DEVICE_TREE_BOARD", tmp_path / "absent")
    monkeypatch.setattr(board, "find_pynq_devices", lambda: [])
    monkeypatch.setenv("BOARD", "KR260")
    assert one_line_error("gemm", "--backend", "board") == (
        "realm-hil: error: this board is a KR260 ($BOARD), for which realm-hil has no overlay "
        "(boards: pynq-z2, zcu104, kv260); pass --board-name if $BOARD is wrong")
    monkeypatch.delenv("BOARD")
    assert "pass --board-name (pynq-z2, zcu104, kv260)" in one_line_error("gemm", "--backend", "board")


def test_open_board_loads_the_overlay_of_the_reported_board(monkeypatch, tmp_path):
    """No --board-name on a ZCU104: the ZCU104's overlay is the one looked up (none is built here)."""
    monkeypatch.setenv("BOARD", "ZCU104")
    monkeypatch.setattr(board, "find_pynq_devices", lambda: [])
    with pytest.raises(ManifestError, match="no overlay for board 'zcu104'"):
        realm_hil.open_accelerator("board")
    with pytest.raises(ManifestError, match="no overlay for board 'kv260'"):
        realm_hil.open_accelerator("board", board_name="kv260")  # given, it wins


def test_serve_loads_the_overlay_from_the_manifest_given(monkeypatch, tmp_path):
    """A board that installed the wheel keeps its copy of bitstreams/ wherever it was put."""
    monkeypatch.setenv("BOARD", "Pynq-Z2")
    monkeypatch.setenv("REALM_HIL_TOKEN", "serve-token")
    monkeypatch.setattr(board, "find_pynq_devices", lambda: [])
    manifest = tmp_path / "bitstreams" / "manifest.json"
    line = one_line_error("serve", "--bind", "127.0.0.1:0", "--backend", "board", "--manifest", str(manifest))
    assert str(manifest) in line
