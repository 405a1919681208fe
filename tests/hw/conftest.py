"""The board the hw tests run on: the real one named by --board, else the simulated PYNQ.remote board.

Without --board a simulated ZCU104 is served over loopback gRPC (what `realm-hil serve --pynq-remote`
serves) and reached through pynq's own PYNQ.remote client, so the tests run the same board code path
in `make test` that they run on a real board, and never skip.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import pytest

import realm_hil
from realm_hil.fpga.manifest import BOARDS, MANIFEST_PATH

SIM_BOARD = "zcu104"  # PYNQ.remote runs on ZU boards: the simulated board is a ZCU104


@dataclass(frozen=True)
class BoardUnderTest:
    name: str  # the board, its overlay in the manifest and its timing profile
    manifest: Path
    address: str | None  # pynq://HOST:PORT of the simulated board; None for the board running the tests

    def open(self) -> realm_hil.Accelerator:
        """The board backend, overlay loaded and checked against the manifest, clock at nominal."""
        where = {} if self.address is None else {"address": self.address}
        return realm_hil.open_accelerator("board", board_name=self.name, manifest=self.manifest, **where)

    @contextlib.contextmanager
    def pynq_device(self):
        """A pynq device of the board, for reading its registers past realm-hil."""
        if self.address is None:
            import pynq

            yield pynq.Device.active_device
            return
        from pynq.pl_server.remote_device import RemoteDevice

        from realm_hil.backends.board_address import parse_pynq_address

        device = RemoteDevice(0, *parse_pynq_address(self.address))
        try:
            yield device
        finally:
            device.client.channel.close()


@pytest.fixture(scope="session")
def board(request, tmp_path_factory):
    name = request.config.getoption("--board")
    if name is not None:
        if name not in BOARDS:
            raise pytest.UsageError(f"--board {name}: not a board realm-hil has an overlay for ({', '.join(BOARDS)})")
        yield BoardUnderTest(name, MANIFEST_PATH, None)
        return
    from realm_hil.sim.overlay import SimBoardConfig, write_sim_overlay
    from realm_hil.sim.pynq_remote_server import PynqRemoteServer, SimBoard

    config = SimBoardConfig(SIM_BOARD)
    manifest = write_sim_overlay(tmp_path_factory.mktemp("overlay"), config)
    simulated = SimBoard(config)
    try:
        with PynqRemoteServer(simulated, "127.0.0.1:0") as server:
            yield BoardUnderTest(SIM_BOARD, manifest, f"pynq://{server.address}")
    finally:
        simulated.close()
