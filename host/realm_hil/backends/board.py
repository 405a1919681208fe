"""Opening a real PYNQ board: device discovery, overlay verification, then the shared driver."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from ..errors import BackendUnavailable
from .board_address import PYNQ_REMOTE_ENV, PYNQ_SCHEME, is_pynq_address

NO_BOARD_HINT = "run without --board to use the Verilated accelerator (--backend sim)"


def find_pynq_devices() -> list:
    """The PYNQ devices on this machine; raises BackendUnavailable with the reason when there are none."""
    try:
        import pynq
    except ImportError as exc:
        raise BackendUnavailable(f"pynq is not installed ({exc}); pip install 'realm-hil[board]'") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pynq warns about XRT on machines that are not boards
        try:
            devices = list(pynq.Device.devices)
        except (RuntimeError, OSError):
            devices = []
    if not devices:
        raise BackendUnavailable(f"no PYNQ board found on this machine; {NO_BOARD_HINT}")
    return devices


def open_board(address: str | None = None, board_name: str | None = None, manifest: Path | None = None,
               token: str | bytes | None = None):
    """A board on this machine; with address="HOST:PORT" one served by `realm-hil serve`, with
    address="pynq://HOST[:PORT]" a ZU board running the PYNQ.remote image.

    No address and pynq's PYNQ_REMOTE_DEVICES set means the first board listed there.
    """
    remote = os.environ.get(PYNQ_REMOTE_ENV, "").split(",")[0].strip()
    if address is None and remote:
        address = PYNQ_SCHEME + remote
    if is_pynq_address(address):
        from .remote_board import open_remote_board

        return open_remote_board(address, board_name, manifest)
    if address is not None:
        from ..remote.client import open_remote

        return open_remote(address, token)
    find_pynq_devices()
    from .pynq_backend import open_overlay

    return open_overlay(board_name, manifest)
