"""How much of the simulator's native speed the pynq driver path keeps.

The host path is AccelDriver.gemm through SimDevice and the stock pynq DMA driver (tiling,
packing, register traffic, unpacking, checks). The raw path streams the same pre-packed tiles
through the model in one C++ call, so it is the ceiling for any host code.
"""

from __future__ import annotations

import time

import numpy as np

from .. import regmap
from ..driver import AccelDriver
from ..sim.binding import SimModel
from ..sim.device import SimDevice
from ..tiling import pack_tiles, plan_for, tile_operands

DEFAULT_SHAPES = ((64, 576, 576),)


def _operands(rng: np.random.Generator, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    m, k, n = shape
    return (rng.integers(-128, 128, (m, k), dtype=np.int8), rng.integers(-128, 128, (k, n), dtype=np.int8))


def _raw_seconds(model: SimModel, x: np.ndarray, w: np.ndarray) -> float:
    plan = plan_for(x, w, model.array_n)
    stream = np.empty(plan.count * plan.in_tile_bytes, dtype=np.uint8)
    pack_tiles(stream, tile_operands(x, w, plan), plan, 0, plan.count)
    out = np.empty(plan.count * plan.out_tile_bytes, dtype=np.uint8)
    start = time.perf_counter()
    model.raw(stream, out)
    return time.perf_counter() - start


def bench_sim(array_n: int = 8, shapes=DEFAULT_SHAPES, seed: int = 0) -> dict:
    """MAC/s of the driver path and of the raw C++ loop on the same GEMMs, and their ratio."""
    rng = np.random.default_rng(seed)
    operands = [_operands(rng, tuple(s)) for s in shapes]
    macs = sum(x.shape[0] * x.shape[1] * w.shape[1] for x, w in operands)
    device = SimDevice(SimModel(array_n))
    try:
        driver = AccelDriver(
            device.ip_dict[regmap.BD_CELLS["accelerator"]], device.ip_dict[regmap.BD_CELLS["dma"]]
        )
        start = time.perf_counter()
        for x, w in operands:
            driver.gemm(x, w)
        host_s = time.perf_counter() - start
        driver.close()
        # The raw path bypasses the DMA registers, so it runs after the driver is done with them.
        raw_s = sum(_raw_seconds(device.model, x, w) for x, w in operands)
    finally:
        device.close()
    host, raw = macs / host_s, macs / raw_s
    return {
        "array_n": array_n,
        "macs": macs,
        "host_macs_per_s": host,
        "raw_macs_per_s": raw,
        "ratio": host / raw,
    }
