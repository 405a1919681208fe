"""The board backend on a ZU board running the PYNQ.remote image, with nothing of realm-hil on the board.

pynq's RemoteDevice reaches the board over gRPC and the rest is the local board path: the overlay
from the manifest, checked the same way; AccelDriver with its MMIO, buffers and the stock DMA driver
going over the connection; the array clock through the Clocking Wizard's registers (or the PS clock
dividers), back to nominal on close, on errors and on Ctrl-C.

pynq reads PYNQ_REMOTE_DEVICES once, when it is imported, to decide whether to probe for remote
devices and which GPIO and interrupt classes to use. None of that is needed here, so the variable is
neither required nor set and import order does not matter: the device is built from the address
given (pynq 4.0's probe cannot take a port anyway: "host:port" becomes "host:port:7967"), every pynq
object is handed that device, and realm-hil overlays wire no interrupts or PS GPIO, the only parts
that would need pynq's remote classes. (open_board reads the variable, when set, for a default
address.)
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from ..errors import BackendUnavailable
from ..fpga.manifest import BOARDS, MANIFEST_PATH, verify_overlay
from ..gemm_call import GemmCall, GemmResult
from ..operating_point import OperatingPoint
from ..remote.client import connect_socket
from ..stats import PolicyConfig
from .board_address import parse_pynq_address
from .pynq_backend import PynqAccelerator, overlay_driver

CONNECT_TIMEOUT_S = 5.0  # pynq's own wait for the gRPC channel


@contextlib.contextmanager
def rpc_errors(where: str):
    """A failed gRPC call becomes a one-line BackendUnavailable naming the server."""
    import grpc

    try:
        yield
    except grpc.RpcError as exc:
        code = exc.code().name if hasattr(exc, "code") else "error"
        details = exc.details() if hasattr(exc, "details") else str(exc)
        raise BackendUnavailable(f"{where}: {code}: {details}") from None


class RemoteBoardAccelerator(PynqAccelerator):
    """The board backend through PYNQ.remote; `address` is the pynq:// address it was opened with."""

    def __init__(self, driver, clock, address: str, on_close) -> None:
        self.address = address
        self._where = _server(address)
        with rpc_errors(self._where):
            super().__init__(driver, clock, name="board", on_close=on_close)

    def _run(self, call: GemmCall) -> GemmResult:
        with rpc_errors(self._where):
            return super()._run(call)

    def set_policy(self, policy: PolicyConfig) -> None:
        with rpc_errors(self._where):
            super().set_policy(policy)

    def set_operating_point(self, point: OperatingPoint, *, force: bool = False) -> OperatingPoint:
        with rpc_errors(self._where):
            return super().set_operating_point(point, force=force)

    def info(self) -> dict:
        return {**super().info(), "remote": self.address}

    def close(self) -> None:
        with rpc_errors(self._where):
            super().close()


def open_remote_board(address: str, board_name: str | None = None,
                      manifest: Path | None = None) -> RemoteBoardAccelerator:
    """The overlay (verified against the manifest) on the PYNQ.remote board at pynq://HOST[:PORT].

    `board_name` defaults to the board's own PYNQ name; given, the board must be that one.
    """
    host, port = parse_pynq_address(address)
    where = _server(address)
    manifest = manifest or MANIFEST_PATH
    # refused or unroutable fails here at once, instead of after pynq's 5 s wait for a channel
    connect_socket(host, port, CONNECT_TIMEOUT_S, where, "is the board up with the PYNQ.remote image?").close()
    device = _connect(host, port, where)
    try:
        with rpc_errors(where):
            board_name = _board_name(device, board_name, where)
            entry = verify_overlay(board_name, manifest)
            _make_default(device)
            overlay = _download(device, entry, manifest)
            driver, clock = overlay_driver(overlay, entry)
        return RemoteBoardAccelerator(driver, clock, address, on_close=device.client.channel.close)
    except BaseException:
        device.client.channel.close()
        raise


def _server(address: str) -> str:
    """How errors name the board's server."""
    return f"the PYNQ.remote server at {address}"


def _connect(host: str, port: int, where: str):
    from pynq.pl_server.remote_device import RemoteDevice

    with rpc_errors(where):
        try:
            # pynq joins host and port with a colon, so an IPv6 host needs its brackets
            return RemoteDevice(0, f"[{host}]" if ":" in host else host, port)
        except RuntimeError:
            raise BackendUnavailable(f"{where} accepts connections but no gRPC channel came up within "
                                     f"{CONNECT_TIMEOUT_S:g} s (is it a PYNQ.remote server?)") from None


def _board_name(device, expected: str | None, where: str) -> str:
    # a bitstream for another board must never reach this one's fpga_manager
    name = device.name.strip()
    reported = name.lower()
    if expected is not None and reported != expected:
        hint = f"; pass --board-name {reported}" if reported in BOARDS else ""
        raise BackendUnavailable(f"{where} is a {name} board, not {expected}{hint}")
    if reported not in BOARDS:
        raise BackendUnavailable(f"{where} is a {name} board, for which realm-hil has no overlay "
                                 f"(boards: {', '.join(BOARDS)})")
    return reported


def _make_default(device) -> None:
    """Point pynq's process-wide defaults at this board.

    Overlay.download sets the ZU AXI port widths through pynq's default device, and pynq.ps.Clocks
    keeps the PS clock driver of the first device it ever used (set_device does not replace it), so
    a second board opened in one process would have its PL clocks set on the first.
    """
    from pynq import Device
    from pynq.ps import Clocks

    Device.active_device = device
    Clocks.set_device(device)
    if "_real_instance" in vars(Clocks):
        del Clocks._real_instance


def _download(device, entry, manifest: Path):
    from pynq import Overlay

    overlay = Overlay(str(entry.bit_path(manifest.parent)), device=device, download=False)
    # pynq programs /lib/firmware/<name> as it finds it if the file exists, so under the plain name a
    # stale image from an earlier build would be loaded instead of the one just verified
    overlay.binfile_name = f"{Path(entry.bitfile).stem}-{entry.bit_sha256[:16]}.bin"
    overlay.download()
    return overlay
