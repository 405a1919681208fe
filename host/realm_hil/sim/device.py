"""A pynq.Device backed by the Verilated accelerator, so the board driver runs unchanged in simulation.

pynq.MMIO reaches a device with the REGISTER_RW capability through read_registers /
write_registers; this device routes the accelerator's window to AXI-Lite transactions and the
DMA's window to the harness's AXI DMA model. Reading the status of a DMA channel with a
transfer in flight lets simulated time pass (a bounded number of cycles), which is what makes
pynq's busy-wait loops, and the driver's deadline polling, progress.
"""

from __future__ import annotations

import struct
import weakref

import numpy as np
from pynq import Device
from pynq.buffer import PynqBuffer

from .. import regmap
from .binding import MM2S, S2MM, SimModel

ACCEL_BASE = 0x43C00000
DMA_BASE = 0x40400000
DMA_RANGE = 0x10000
DMA_STATUS = {0x04: MM2S, 0x34: S2MM}
DMA_DATA_WIDTH = 64  # memory-map side, as on the PS HP ports
DMA_LENGTH_WIDTH = 26  # the widest buffer-length register the AXI DMA core offers
MEMORY_BASE = 0x1000_0000
PAGE = 4096
POLL_CYCLES = 200_000


class SimDevice(Device):
    """pynq device for one SimModel: registers, DMA and contiguous buffers with physical addresses."""

    def __init__(self, model: SimModel, *, poll_cycles: int = POLL_CYCLES, tag: str = "realm_sim") -> None:
        super().__init__(tag)
        self.capabilities = {"REGISTER_RW": True}
        self.model = model
        self.poll_cycles = poll_cycles
        self._next_phys = MEMORY_BASE
        self.ip_dict = {
            regmap.BD_CELLS["accelerator"]: accelerator_description(self),
            regmap.BD_CELLS["dma"]: dma_description(self),
        }
        self.mem_dict: dict = {}

    def read_registers(self, address: int, length: int) -> bytes:
        words = [self._read_word(address + i) for i in range(0, length, 4)]
        return struct.pack(f"<{len(words)}I", *words)

    def write_registers(self, address: int, data: bytes) -> None:
        data = bytes(data)
        if len(data) % 4:
            raise MemoryError(f"register writes must be whole 32-bit words, got {len(data)} bytes")
        for i, (value,) in enumerate(struct.iter_unpack("<I", data)):
            self._write_word(address + 4 * i, value)

    def _read_word(self, address: int) -> int:
        if ACCEL_BASE <= address < ACCEL_BASE + regmap.WINDOW:
            return self.model.axil_read(address - ACCEL_BASE)
        if DMA_BASE <= address < DMA_BASE + DMA_RANGE:
            offset = address - DMA_BASE
            channel = DMA_STATUS.get(offset, 0)
            if self.model.dma_busy() & channel:
                self.model.run(self.poll_cycles, channel)
            return self.model.dma_read(offset)
        raise MemoryError(f"no simulated device at {address:#x}")

    def _write_word(self, address: int, value: int) -> None:
        if ACCEL_BASE <= address < ACCEL_BASE + regmap.WINDOW:
            self.model.axil_write(address - ACCEL_BASE, value)
        elif DMA_BASE <= address < DMA_BASE + DMA_RANGE:
            self.model.dma_write(address - DMA_BASE, value)
        else:
            raise MemoryError(f"no simulated device at {address:#x}")

    def allocate(self, shape, dtype, **kwargs) -> PynqBuffer:
        """A zeroed buffer at a fresh physical address the DMA model can reach until it is freed."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        pages = max(1, -(-nbytes // PAGE))
        phys = self._next_phys
        # A guard page after each buffer: an overrunning DMA address decodes to nothing.
        self._next_phys += (pages + 1) * PAGE
        backing = np.zeros(pages * PAGE, dtype=np.uint8)
        self.model.map(phys, backing)
        weakref.finalize(backing, self.model.unmap, phys)
        return PynqBuffer(shape, dtype, buffer=backing, device=self, device_address=phys, coherent=False)

    def flush(self, bo, offset, ptr, size) -> None:
        """Host and simulated memory are the same bytes: nothing to write back."""

    def invalidate(self, bo, offset, ptr, size) -> None:
        """Host and simulated memory are the same bytes: nothing to discard."""

    def close(self) -> None:
        self.model.close()


def accelerator_description(device: SimDevice) -> dict:
    """The ip_dict entry a .hwh would give for the accelerator."""
    return {
        "fullpath": regmap.BD_CELLS["accelerator"],
        "type": "realm-hil:user:realm_accel:1.0",
        "phys_addr": ACCEL_BASE,
        "addr_range": regmap.WINDOW,
        "parameters": {},
        "interrupts": {},
        "gpio": {},
        "device": device,
    }


def dma_description(device: SimDevice) -> dict:
    """The ip_dict entry of an AXI DMA in simple mode, both channels, no interrupts."""
    stream_bits = {"mm2s": 16 * device.model.array_n, "s2mm": 32 * device.model.array_n}
    params = {
        "c_include_sg": "0",
        "c_micro_dma": "0",
        "c_sg_length_width": str(DMA_LENGTH_WIDTH),
        "c_include_mm2s": "1",
        "c_include_s2mm": "1",
        "c_include_mm2s_dre": "0",
        "c_include_s2mm_dre": "0",
        "c_m_axi_mm2s_data_width": str(DMA_DATA_WIDTH),
        "c_m_axi_s2mm_data_width": str(DMA_DATA_WIDTH),
        "c_m_axis_mm2s_tdata_width": str(stream_bits["mm2s"]),
        "c_s_axis_s2mm_tdata_width": str(stream_bits["s2mm"]),
    }
    return {
        "fullpath": regmap.BD_CELLS["dma"],
        "type": "xilinx.com:ip:axi_dma:7.1",
        "phys_addr": DMA_BASE,
        "addr_range": DMA_RANGE,
        "parameters": params,
        "interrupts": {},
        "gpio": {},
        "device": device,
    }
