"""Opening a real PYNQ board: device discovery, which board it is, overlay verification, then the shared driver.

What a board user meets first is turned into one line saying what to do: pynq missing, not root
(pynq maps /dev/mem and writes the FPGA manager), a pynq that does not recognize the board (3.1 and
later load XRT only where the device tree names the board), a board the image does not name or
realm-hil has no overlay for.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

from ..board_sensors import SensorsUnavailable, find_sensors
from ..errors import BackendUnavailable
from ..fpga.manifest import BOARDS
from .board_address import PYNQ_REMOTE_ENV, PYNQ_SCHEME, is_pynq_address

NO_BOARD_HINT = "run without --board to use the Verilated accelerator (--backend sim)"
# Where pynq (3.1 and later) and the PYNQ images' /etc/profile.d/boardname.sh read the board's name; an image
# exports it as $BOARD (Kria-PYNQ writes its -b argument there instead), and sudo keeps it on PYNQ images
BOARD_ENV = "BOARD"
DEVICE_TREE_BOARD = Path("/proc/device-tree/chosen/pynq_board")
FPGA_MANAGER = Path("/sys/class/fpga_manager/fpga0/firmware")
# a login shell as root gets the image's environment from /etc/profile.d: pynq's venv, $BOARD, XILINX_XRT
ROOT_HINT = ("pynq needs root on a board (it maps /dev/mem and writes the FPGA manager): run realm-hil as root "
             "in the image's PYNQ environment (sudo -i, then realm-hil ...)")


@contextlib.contextmanager
def needs_root():
    """pynq's refusals for want of root (PermissionError, or its OSError "Root permissions required") as one line."""
    try:
        yield
    except PermissionError as exc:
        raise BackendUnavailable(f"{exc.strerror or exc}{f' ({exc.filename})' if exc.filename else ''}: "
                                 f"{ROOT_HINT}") from None
    except OSError as exc:
        if not _root_refusal(exc):
            raise
        raise BackendUnavailable(f"pynq: {exc} {ROOT_HINT}") from None


def _root_refusal(exc: BaseException) -> bool:
    """pynq's own refusal when it is not root (EmbeddedDevice.mmap: OSError "Root permissions required.")."""
    return isinstance(exc, OSError) and "root permission" in str(exc).lower()


def find_pynq_devices() -> list:
    """The PYNQ devices on this machine; raises BackendUnavailable with the reason when there are none."""
    try:
        import pynq
    except ImportError as exc:
        raise BackendUnavailable(f"pynq is not installed ({exc}); install realm-hil with its board extra, "
                                 f"or run in the venv of the board's PYNQ image") from None
    if FPGA_MANAGER.exists() and os.geteuid() != 0:
        raise BackendUnavailable(f"not root: {ROOT_HINT}")
    with warnings.catch_warnings(), needs_root():
        warnings.simplefilter("ignore")  # pynq warns about XRT on machines that are not boards
        try:
            devices = list(pynq.Device.devices)
        except (NameError, RuntimeError, OSError) as exc:
            # pynq keeps the list it was filling when its probe failed: without this, the next probe in
            # this process would find no board instead of meeting the same error
            if "_devices" in vars(pynq.Device):
                del pynq.Device._devices
            if isinstance(exc, NameError):
                if "pyxrt" not in str(exc):
                    raise
                raise BackendUnavailable(_unrecognized_board(pynq)) from None
            if isinstance(exc, PermissionError) or _root_refusal(exc):
                raise  # needs_root says it in one line
            devices = []
    if not devices:
        raise BackendUnavailable(f"no PYNQ board found on this machine; {NO_BOARD_HINT}")
    return devices


def _unrecognized_board(pynq) -> str:
    # pynq 3.1+ imports pyxrt only when the device tree names the board, yet probes any FPGA manager,
    # so on a device tree without the name (Kria-PYNQ's) its probe dies with NameError: pyxrt
    return (f"pynq {getattr(pynq, '__version__', '')} does not recognize this board: it loads XRT (pyxrt) only "
            f"when {DEVICE_TREE_BOARD} exists, and this device tree has none (Kria-PYNQ's has not); use the pynq "
            f"the board's image installed (Kria-PYNQ: pip install pynq==3.0.1) or add a pynq_board property "
            f"to the device tree's /chosen node")


def board_name_here() -> str:
    """The name of this board as its PYNQ image gives it ($BOARD, else the device tree), as realm-hil spells it."""
    reported = os.environ.get(BOARD_ENV, "").strip()
    source = f"${BOARD_ENV}"
    if not reported or reported == "Unknown":  # the image's boardname.sh says Unknown without the device tree
        with contextlib.suppress(OSError):
            reported, source = DEVICE_TREE_BOARD.read_text().strip("\0\n "), str(DEVICE_TREE_BOARD)
    if not reported:
        raise BackendUnavailable(f"which board is this? ${BOARD_ENV} is not set (PYNQ images set it at login) and "
                                 f"{DEVICE_TREE_BOARD} does not exist: pass --board-name ({', '.join(BOARDS)})")
    name = reported.lower()
    if name not in BOARDS:
        raise BackendUnavailable(f"this board is a {reported} ({source}), for which realm-hil has no overlay "
                                 f"(boards: {', '.join(BOARDS)}); pass --board-name if {source} is wrong")
    return name


def open_board(address: str | None = None, board_name: str | None = None, manifest: Path | None = None,
               token: str | bytes | None = None):
    """A board on this machine; with address="HOST:PORT" one served by `realm-hil serve`, with
    address="pynq://HOST[:PORT]" a ZU board running the PYNQ.remote image.

    No address and pynq's PYNQ_REMOTE_DEVICES set means the first board listed there. On this
    machine's board, `board_name` defaults to the board its image names (board_name_here).
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
    board_name = board_name or board_name_here()
    from .pynq_backend import open_overlay

    with needs_root():
        acc = open_overlay(board_name, manifest)
    try:
        acc.sensors = find_sensors()
    except SensorsUnavailable as exc:
        warnings.warn(f"no die temperature or VCCINT in the results: {exc}", stacklevel=2)
    return acc
