"""A PYNQ.remote server for a simulated ZU board: pynq's own RemoteDevice client drives the Verilated accelerator.

A ZU board booted with the PYNQ.remote image serves gRPC on port 7967; pynq on a workstation uses it
to read the board's files, program the PL through fpga_manager, map registers and allocate DMA
buffers. This module implements the same services, from the protobuf definitions pynq ships
(pynq.remote.*_pb2_grpc), for a board whose hardware is simulated:

- the PL is the Verilated realm_accel with its DMA model (SimDevice) and a Clocking Wizard whose
  output is the modeled array clock (sim/clock_wizard.py), at the addresses of the overlay
  write_sim_overlay() describes; writing that overlay's image name to fpga_manager programs it (a
  hard reset), nothing else will. While the wizard relocks the array clock is stopped, and whatever
  the array holds is lost until the host resets it (CTRL.SOFT_RESET) with the clock running again:
  until then every accumulator bit comes out stale;
- the PS is the few registers pynq touches from a workstation (PL clock dividers, AXI port widths),
  held as plain memory;
- the file system holds what pynq reads (/proc/version, the board name, fpga_manager state) and
  keeps what it writes (/lib/firmware, fpga_manager flags and firmware).

Only the RPCs pynq's client calls are implemented. GPIO, download, set_pl_clk and shutdown are not:
pynq 4.0 sets PL clocks through the PS registers and reconfigures through fpga_manager files, and an
overlay without PS GPIO never asks; the shipped Servicer base answers them UNIMPLEMENTED.
"""

from __future__ import annotations

import itertools
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass

import grpc
import numpy as np
from pynq.pl_server.embedded_device import bit2bin
from pynq.remote import (
    buffer_pb2,
    buffer_pb2_grpc,
    mmio_pb2,
    mmio_pb2_grpc,
    remote_device_pb2,
    remote_device_pb2_grpc,
)

from .. import regmap
from ..driver import AccelDriver
from ..errors import RealmError
from ..operating_point import OperatingPoint
from ..remote.protocol import parse_address
from .array_clock import SimClock
from .binding import SimModel
from .clock_wizard import ClockWizardModel, WizardTiming
from .device import ACCEL_BASE, DMA_BASE, SimDevice
from .overlay import (
    BOARD_NAMES,
    PL_ACCEL_BASE,
    PL_DMA_BASE,
    PL_DMA_RANGE,
    PL_WIZARD_BASE,
    WIZARD_RANGE,
    SimBoardConfig,
    sim_bitfile,
)

BOARD_NAME_FILE = "/proc/device-tree/chosen/pynq_board"
FIRMWARE_DIR = "/lib/firmware/"
FPGA_MANAGER = "/sys/class/fpga_manager/fpga0/"
CHUNK_BYTES = 1 << 20
EVENTS_KEPT = 10_000
# slack of a PE whose every accumulator bit comes out stale (realm_accel.v: L < 0)
STALE_SLACK = -128
PS_BLOCK_BYTES = 0x100
_PL_REF = (1 << 24) | (1 << 16) | (15 << 8)  # CLKACT, DIVISOR1 = 1, DIVISOR0 = 15, IOPLL
# Reset values of the PS registers pynq reads: IOPLL 33.333 MHz x 90 / 2 = 1500 MHz, each PL clock
# 1500 / 15 = 100 MHz; the other PLLs only have to decode.
PS_REGISTERS = {
    0xFF5E_0000: {0x20: 0x0001_5A00, 0x30: 0x0001_4800, 0xC0: _PL_REF, 0xC4: _PL_REF, 0xC8: _PL_REF,
                  0xCC: _PL_REF},  # CRL_APB
    0xFD1A_0000: {0x20: 0x0001_4800, 0x2C: 0x0001_4000, 0x38: 0x0001_5A00, 0x60: 0x0000_0100},  # CRF_APB
    0xFD61_5000: {},  # FPD_SLCR (AXI_FS: HPM port widths)
    0xFF41_9000: {},  # LPD_SLCR (AXI_FS)
    **{0xFD36_0000 + 0x1_0000 * i: {} for i in range(6)},  # AFIFM0..5 (HP port widths)
}


class _Failure(Exception):
    """A request the board refuses: in the reply's msg where it has one, else as the RPC's status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class _Window:
    base: int
    size: int
    read: Callable[[int], int]  # the 32-bit word at a byte offset
    write: Callable[[int, int], None]
    pl: bool  # answers only while the PL is programmed


class SimBoard:
    """The simulated ZU board behind the services: files, PS registers, PL windows and buffers.

    events holds the latest wizard loads, drops, locks and status reads and the array resets, each as
    (what, board cycle, value), for tests to check the order the host did things in.
    """

    def __init__(self, config: SimBoardConfig | None = None, wizard_timing: WizardTiming | None = None) -> None:
        self.config = config = config or SimBoardConfig()
        self.device = SimDevice(SimModel(config.array_n))
        self.image = bit2bin(sim_bitfile(config))
        self.files = {
            "/proc/version": f"Linux version 6.6.10-xilinx (realm-hil simulated {config.board}) aarch64\n".encode(),
            BOARD_NAME_FILE: f"{BOARD_NAMES[config.board]}\x00".encode(),
            FPGA_MANAGER + "state": b"operating\n",
            FPGA_MANAGER + "flags": b"0\n",
        }
        self.clock: SimClock | None = None
        self.events: deque = deque(maxlen=EVENTS_KEPT)
        self.wizard = ClockWizardModel(lambda: self.device.model.cycles, self._array_clock_stopped, self.events,
                                       wizard_timing)
        self._array_lost = False
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self._mmios: dict[str, tuple[_Window, int, int]] = {}
        self._buffers: dict[str, object] = {}
        self._windows = [self._pl_window(PL_ACCEL_BASE, regmap.WINDOW, ACCEL_BASE, self._accel_written),
                         self._pl_window(PL_DMA_BASE, PL_DMA_RANGE, DMA_BASE)]
        if config.clock_wizard:
            self._windows.append(_Window(PL_WIZARD_BASE, WIZARD_RANGE, self.wizard.read, self.wizard.write, pl=True))
        self._windows += [_ps_window(base, values) for base, values in PS_REGISTERS.items()]

    @property
    def programmed(self) -> bool:
        return self.clock is not None

    def close(self) -> None:
        self.device.close()

    def _pl_window(self, base: int, size: int, device_base: int,
                   written: Callable[[int, int], None] | None = None) -> _Window:
        # the wizard's lock changes in board time: brought up to date before the PL does anything else
        def read(offset: int) -> int:
            self.wizard.update()
            return struct.unpack("<I", self.device.read_registers(device_base + offset, 4))[0]

        def write(offset: int, value: int) -> None:
            self.wizard.update()
            self.device.write_registers(device_base + offset, struct.pack("<I", value))
            if written is not None:
                written(offset, value)

        return _Window(base, size, read, write, pl=True)

    # -- the array clock -------------------------------------------------------------------

    def _array_clock_stopped(self) -> None:
        self._array_lost = True
        driver = self.clock.driver
        driver.write_slack_table(np.full((driver.array_n, driver.array_n), STALE_SLACK))
        driver.enable_timing_emulation(True)

    def _accel_written(self, offset: int, value: int) -> None:
        if offset != regmap.CTRL or not value & (1 << regmap.CTRL_SOFT_RESET[1]):
            return
        locked = self.wizard.locked
        self.events.append(("array_reset", self.wizard.now(), locked))
        if locked and self._array_lost:
            # the wizard makes whatever it is programmed for; the safety ceiling is the client's to enforce
            self.clock.set(OperatingPoint(self.wizard.mhz), force=True)
            self._array_lost = False

    # -- files and fpga_manager ------------------------------------------------------------

    def read_file(self, path: str) -> bytes:
        if path not in self.files:
            raise _Failure(grpc.StatusCode.NOT_FOUND, f"{path}: no such file")
        return self.files[path]

    def write_file(self, path: str, data: bytes) -> None:
        if path == FPGA_MANAGER + "firmware":
            self._program(data.decode(errors="replace").strip())
        elif path.startswith(("/proc/", "/sys/")) and path != FPGA_MANAGER + "flags":
            raise _Failure(grpc.StatusCode.PERMISSION_DENIED, f"{path}: read-only on the simulated board")
        self.files[path] = data

    def _program(self, name: str) -> None:
        image = self.files.get(FIRMWARE_DIR + name)
        if image is None:
            raise _Failure(grpc.StatusCode.NOT_FOUND, f"{FIRMWARE_DIR}{name}: no such file")
        if self.files[FPGA_MANAGER + "flags"].strip() != b"0":
            raise _Failure(grpc.StatusCode.INVALID_ARGUMENT, "partial reconfiguration is not simulated")
        if image != self.image:
            raise _Failure(grpc.StatusCode.INVALID_ARGUMENT,
                           f"{name} is not the overlay of this simulated {self.config.board} "
                           f"(N={self.config.array_n}); it runs only the overlay `realm-hil serve "
                           "--pynq-remote` writes")
        self.device.model.hard_reset()
        # the array clock is modeled as per-PE slack in the accelerator's L table, which the host
        # driver knows how to load
        ip = self.device.ip_dict
        driver = AccelDriver(ip[regmap.BD_CELLS["accelerator"]], ip[regmap.BD_CELLS["dma"]])
        self.clock = SimClock(driver, self.config.board, self.config.seed)
        self.wizard.power_up(self.clock.point.clock_mhz)
        self._array_lost = False

    # -- registers -------------------------------------------------------------------------

    def map(self, base: int, length: int) -> str:
        for window in self._windows:
            if window.base <= base and base + length <= window.base + window.size:
                mmio_id = str(next(self._ids))
                self._mmios[mmio_id] = (window, base - window.base, length)
                return mmio_id
        raise _Failure(grpc.StatusCode.NOT_FOUND,
                       f"nothing at {base:#x}..{base + length - 1:#x} on the simulated board")

    def _mapped(self, mmio_id: str, offset: int, length: int) -> tuple[_Window, int]:
        if mmio_id not in self._mmios:
            raise _Failure(grpc.StatusCode.NOT_FOUND, f"no mmio {mmio_id!r}")
        window, start, mapped = self._mmios[mmio_id]
        if offset % 4 or offset + length > mapped:
            raise _Failure(grpc.StatusCode.OUT_OF_RANGE,
                           f"access of {length} bytes at offset {offset:#x} outside the {mapped:#x}-byte mapping")
        if window.pl and not self.programmed:
            raise _Failure(grpc.StatusCode.FAILED_PRECONDITION, "the PL is not programmed")
        return window, start + offset

    def read_register(self, mmio_id: str, offset: int, length: int) -> int:
        # the reply carries 32 bits, so 8-byte reads cannot be answered
        if length not in (1, 2, 4):
            raise _Failure(grpc.StatusCode.INVALID_ARGUMENT, f"reads of {length} bytes are not supported")
        window, at = self._mapped(mmio_id, offset, length)
        return window.read(at) & ((1 << (8 * length)) - 1)

    def write_registers(self, mmio_id: str, offset: int, data: bytes) -> None:
        if len(data) % 4:
            raise _Failure(grpc.StatusCode.INVALID_ARGUMENT, "writes must be whole 32-bit words")
        window, at = self._mapped(mmio_id, offset, len(data))
        for i, (value,) in enumerate(struct.iter_unpack("<I", data)):
            window.write(at + 4 * i, value)

    # -- buffers ---------------------------------------------------------------------------

    def allocate(self, size: int) -> str:
        if size < 1:
            raise _Failure(grpc.StatusCode.INVALID_ARGUMENT, f"cannot allocate {size} bytes")
        buffer_id = str(next(self._ids))
        self._buffers[buffer_id] = self.device.allocate((size,), np.uint8)
        return buffer_id

    def buffer(self, buffer_id: str):
        if buffer_id not in self._buffers:
            raise _Failure(grpc.StatusCode.NOT_FOUND, f"no buffer {buffer_id!r}")
        return self._buffers[buffer_id]

    def free(self, buffer_id: str) -> None:
        self.buffer(buffer_id).freebuffer()
        del self._buffers[buffer_id]


def _ps_window(base: int, values: dict[int, int]) -> _Window:
    words = np.zeros(PS_BLOCK_BYTES // 4, dtype=np.uint32)
    for offset, value in values.items():
        words[offset // 4] = value

    def write(offset: int, value: int) -> None:
        words[offset // 4] = value

    return _Window(base, PS_BLOCK_BYTES, lambda offset: int(words[offset // 4]), write, pl=False)


def _serve(board: SimBoard, context: grpc.ServicerContext, call: Callable):
    """Run `call` on the board, one RPC at a time; a refusal aborts the RPC with its status."""
    with board.lock:
        try:
            return call()
        except _Failure as exc:
            context.abort(exc.code, str(exc))


def _answer(board: SimBoard, call: Callable) -> tuple[object, str]:
    """(result, "") or (None, why): the services whose replies carry `msg` report refusals there, as pynq expects."""
    with board.lock:
        try:
            return call(), ""
        except _Failure as exc:
            return None, str(exc)


class _DeviceService(remote_device_pb2_grpc.RemoteDeviceServicer):
    def __init__(self, board: SimBoard) -> None:
        self.board = board

    def existsfile(self, request, context):
        exists = _serve(self.board, context, lambda: request.file_path in self.board.files)
        return remote_device_pb2.ExistsFileResponse(exists=exists)

    def readfile(self, request, context) -> Iterator:
        data = _serve(self.board, context, lambda: self.board.read_file(request.file_path))
        for start in range(0, max(len(data), 1), CHUNK_BYTES):
            yield remote_device_pb2.ReadFileResponse(data=data[start:start + CHUNK_BYTES])

    def writefile(self, request_iterator, context):
        requests = list(request_iterator)
        if not requests:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "writefile needs at least one chunk")
        path, data = requests[0].file_path, b"".join(r.data for r in requests)
        _serve(self.board, context, lambda: self.board.write_file(path, data))
        return remote_device_pb2.WriteFileResponse()

    def set_bitstream_attrs(self, request, context):
        # what gets programmed is decided by the fpga_manager writes that follow
        return remote_device_pb2.SetBitstreamAttrsResponse(status=True)


class _MmioService(mmio_pb2_grpc.MmioServicer):
    def __init__(self, board: SimBoard) -> None:
        self.board = board

    def get_mmio(self, request, context):
        mmio_id, msg = _answer(self.board, lambda: self.board.map(request.base_addr, request.length))
        return mmio_pb2.GetMmioResponse(status=not msg, msg=msg, mmio_id=mmio_id or "")

    def read(self, request, context):
        value, msg = _answer(self.board,
                             lambda: self.board.read_register(request.mmio_id, request.offset, request.length))
        return mmio_pb2.ReadResponse(status=not msg, msg=msg, data=value or 0)

    def write(self, request, context):
        _, msg = _answer(self.board, lambda: self.board.write_registers(request.mmio_id, request.offset, request.data))
        return mmio_pb2.WriteResponse(status=not msg, msg=msg)


class _BufferService(buffer_pb2_grpc.RemoteBufferServicer):
    def __init__(self, board: SimBoard) -> None:
        self.board = board

    def allocate(self, request, context):
        buffer_id, msg = _answer(self.board, lambda: self.board.allocate(request.size))
        return buffer_pb2.AllocateResponse(msg=msg, buffer_id=buffer_id or "")

    def write(self, request_iterator, context):
        requests = list(request_iterator)

        def write() -> None:
            if not requests:
                raise _Failure(grpc.StatusCode.INVALID_ARGUMENT, "write needs at least one chunk")
            # chunks follow one another from the first one's start
            data = b"".join(r.data for r in requests)
            target = self.board.buffer(requests[0].buffer_id).view(np.uint8).reshape(-1)
            start = requests[0].start
            if start < 0 or start + len(data) > target.nbytes:
                raise _Failure(grpc.StatusCode.OUT_OF_RANGE,
                               f"{len(data)} bytes at {start} overrun the {target.nbytes}-byte buffer")
            target[start:start + len(data)] = np.frombuffer(data, np.uint8)

        return buffer_pb2.BufferWriteResponse(msg=_answer(self.board, write)[1])

    def read(self, request, context) -> Iterator:
        def read() -> bytes:
            source = self.board.buffer(request.buffer_id).view(np.uint8).reshape(-1)
            end = request.end or source.nbytes
            if not 0 <= request.start <= end <= source.nbytes:
                raise _Failure(grpc.StatusCode.OUT_OF_RANGE,
                               f"bytes {request.start}..{end} are outside the {source.nbytes}-byte buffer")
            return source[request.start:end].tobytes()

        data = _serve(self.board, context, read)
        for start in range(0, max(len(data), 1), CHUNK_BYTES):
            yield buffer_pb2.BufferReadResponse(data=data[start:start + CHUNK_BYTES])

    def freebuffer(self, request, context):
        return buffer_pb2.FreeBufferResponse(msg=_answer(self.board, lambda: self.board.free(request.buffer_id))[1])

    # host and simulated memory are the same bytes: nothing to write back or discard
    def flush(self, request, context):
        return buffer_pb2.FlushResponse(msg=_answer(self.board, lambda: self.board.buffer(request.buffer_id))[1])

    def invalidate(self, request, context):
        return buffer_pb2.InvalidateResponse(msg=_answer(self.board, lambda: self.board.buffer(request.buffer_id))[1])

    def physical_address(self, request, context):
        return self._address(request, "physical_address")

    def virtual_address(self, request, context):
        return self._address(request, "virtual_address")

    def _address(self, request, kind: str):
        address, msg = _answer(self.board, lambda: getattr(self.board.buffer(request.buffer_id), kind))
        return buffer_pb2.AddressResponse(msg=msg, address=address or 0)


class PynqRemoteServer:
    """The PYNQ.remote services of one SimBoard on a gRPC port; serving from construction until close()."""

    def __init__(self, board: SimBoard, address: str, workers: int = 4) -> None:
        host, port = parse_address(address, listen=True)
        self.board = board
        self.host = host
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
        remote_device_pb2_grpc.add_RemoteDeviceServicer_to_server(_DeviceService(board), self._server)
        mmio_pb2_grpc.add_MmioServicer_to_server(_MmioService(board), self._server)
        buffer_pb2_grpc.add_RemoteBufferServicer_to_server(_BufferService(board), self._server)
        bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            self.port = self._server.add_insecure_port(bind)
        except RuntimeError:
            self.port = 0
        if not self.port:
            raise RealmError(f"cannot listen on {address} (in use, or not an address of this machine)")
        self._server.start()

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops or `timeout` passes; True if it stopped."""
        return self._server.wait_for_termination(timeout)

    def close(self) -> None:
        self._server.stop(grace=None).wait()

    def __enter__(self) -> PynqRemoteServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
