"""The stock pynq MMIO and AXI DMA drivers against SimDevice."""

import numpy as np
import pytest
from pynq import MMIO, allocate
from pynq.buffer import PynqBuffer
from pynq.lib.dma import DMA

from realm_hil import regmap
from realm_hil.sim.binding import SimModel
from realm_hil.sim.device import ACCEL_BASE, SimDevice
from realm_hil.tiling import int32_gemm, pack_tiles, plan_for, tile_operands, unpack_output

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module")
def device():
    dev = SimDevice(SimModel(8))
    yield dev
    dev.close()


def test_mmio_reads_the_register_map(device):
    mmio = MMIO(ACCEL_BASE, regmap.WINDOW, device=device)
    assert mmio.read(regmap.ID) == regmap.ID_VALUE
    assert mmio.read(regmap.VERSION) == regmap.VERSION_VALUE
    assert mmio.read(regmap.PARAMS) & 0xFF == 8
    mmio.write(regmap.FREQ_MIN, 0x1234)
    assert mmio.read(regmap.FREQ_MIN) == 0x1234


def test_allocate_gives_distinct_pynq_buffers(device):
    a = allocate((100,), np.uint8, target=device)
    b = allocate((3, 5), np.int32, target=device)
    assert isinstance(a, PynqBuffer) and isinstance(b, PynqBuffer)
    assert a.physical_address != b.physical_address
    assert b.shape == (3, 5) and b.dtype == np.int32 and not b.any()


def test_unmodified_pynq_dma_streams_tiles(device):
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (16, 20), dtype=np.int8)
    w = rng.integers(-128, 128, (20, 8), dtype=np.int8)
    plan = plan_for(x, w, 8)
    dma = DMA(device.ip_dict[regmap.BD_CELLS["dma"]])
    src = allocate((plan.count * plan.in_tile_bytes,), np.uint8, target=device)
    dst = allocate((plan.count * plan.out_tile_bytes,), np.uint8, target=device)
    pack_tiles(src, tile_operands(x, w, plan), plan, 0, plan.count)
    dma.recvchannel.transfer(dst)
    dma.sendchannel.transfer(src)
    dma.sendchannel.wait()
    dma.recvchannel.wait()
    assert dma.recvchannel.transferred == dst.nbytes
    out = unpack_output(np.asarray(dst), plan, plan.count)
    assert np.array_equal(np.vstack(out.y), int32_gemm(x, w))


def test_dma_to_an_unknown_address_is_a_decode_error(device):
    dma = DMA(device.ip_dict[regmap.BD_CELLS["dma"]])
    stray = np.zeros(64, dtype=np.uint8).view(PynqBuffer)
    stray.device_address = 0x7000_0000
    stray.device = device
    stray.coherent = True
    dma.sendchannel.transfer(stray)
    assert dma.sendchannel.error
    assert dma.mmio.read(0x04) & 0x40  # DMASR.DMADecErr
    # As on the real core the error halts the channel, so pynq's wait() reports it as stopped.
    with pytest.raises(RuntimeError, match="not started"):
        dma.sendchannel.wait()
    dma.mmio.write(0x00, 1 << 2)  # DMACR.Reset clears the error for the next test
