"""ctypes binding of the harness's C API (sim_fallback/realm_sim.h): one Verilated accelerator."""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import numpy as np

from ..accelerator import AcceleratorClosedError
from ..repo_files import RTL
from .build import build

_u32, _i32, _u64, _i64, _ptr = (
    ctypes.c_uint32,
    ctypes.c_int32,
    ctypes.c_uint64,
    ctypes.c_int64,
    ctypes.c_void_p,
)
_SIGNATURES = {
    "realm_sim_create": ([ctypes.c_char_p, _i64, _i64, _i32, _u32, _u32], _ptr),
    "realm_sim_destroy": ([_ptr], None),
    "realm_sim_array_n": ([], _i32),
    "realm_sim_has_trace": ([], _i32),
    "realm_sim_hard_reset": ([_ptr], None),
    "realm_sim_soft_reset": ([_ptr], _i32),
    "realm_sim_axil_write": ([_ptr, _u32, _u32], _i32),
    "realm_sim_axil_read": ([_ptr, _u32, ctypes.POINTER(_u32)], _i32),
    "realm_sim_dma_read": ([_ptr, _u32], _u32),
    "realm_sim_dma_write": ([_ptr, _u32, _u32], None),
    "realm_sim_dma_busy": ([_ptr], _u32),
    "realm_sim_map": ([_ptr, _u64, _ptr, _u64], None),
    "realm_sim_unmap": ([_ptr, _u64], None),
    "realm_sim_run": ([_ptr, _u64, _u32], _u64),
    "realm_sim_cycles": ([_ptr], _u64),
    "realm_sim_raw": ([_ptr, _ptr, _u64, _ptr, _u64, _u64], _i64),
}
NOMINAL_HALF_PS = 5000  # 100 MHz aclk
MM2S, S2MM = 1, 2


class SimError(RuntimeError):
    """The simulated bus did not answer (an AXI-Lite handshake timed out)."""


def _load(library: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(library))
    for name, (args, res) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, res
    return lib


class WaveOptions:
    """Which part of the run goes into an FST file: aclk cycles [start, stop) or one tile by tag."""

    def __init__(self, path: str | Path, start: int = 0, stop: int = 1 << 62, tag: int | None = None) -> None:
        self.path, self.start, self.stop, self.tag = Path(path), start, stop, tag


class SimModel:
    """One Verilated realm_accel with its DMA model; every call runs whole transactions in C++.

    emu_checks=True loads the build with EMU_CHECKS=1 (checksum accumulators emulate timing errors).
    """

    def __init__(
        self,
        array_n: int = 8,
        *,
        waves: WaveOptions | None = None,
        clock_ratio: float = 1.0,
        rtl_dir: Path = RTL,
        emu_checks: bool = False,
    ) -> None:
        self.build = build(array_n, trace=waves is not None, rtl_dir=rtl_dir, emu_checks=emu_checks)
        self._lib = _load(self.build.library)
        self.array_n = self._lib.realm_sim_array_n()
        array_half = max(1, round(NOMINAL_HALF_PS / clock_ratio))
        if waves is None:
            wave_args = (b"", 0, 0, -1)
        else:
            wave_args = (
                str(waves.path).encode(),
                waves.start,
                waves.stop,
                -1 if waves.tag is None else waves.tag,
            )
        # ctypes releases the GIL during a call, so threads really run C concurrently: every call
        # holds the lock, and close takes it too. Reentrant, because buffers unmap themselves from
        # garbage collection, which can run on a thread that holds it.
        self._lock = threading.RLock()
        self._h = self._lib.realm_sim_create(*wave_args, NOMINAL_HALF_PS, array_half)

    def close(self) -> None:
        """Free the model, after any call running on another thread has returned; later calls raise."""
        with self._lock:
            if self._h:
                self._lib.realm_sim_destroy(self._h)
                self._h = None

    def _handle(self) -> int:
        """The live model, for a call made while holding the lock: C must never see a freed handle."""
        if not self._h:
            raise AcceleratorClosedError("simulated accelerator is closed")
        return self._h

    def hard_reset(self) -> None:
        with self._lock:
            self._lib.realm_sim_hard_reset(self._handle())

    def soft_reset(self) -> None:
        with self._lock:
            self._check(self._lib.realm_sim_soft_reset(self._handle()), "soft reset write")

    def axil_write(self, addr: int, value: int) -> None:
        with self._lock:
            resp = self._lib.realm_sim_axil_write(self._handle(), addr, value & 0xFFFFFFFF)
        self._check(resp, f"write to {addr:#x}")

    def axil_read(self, addr: int) -> int:
        out = _u32()
        with self._lock:
            resp = self._lib.realm_sim_axil_read(self._handle(), addr, ctypes.byref(out))
        self._check(resp, f"read of {addr:#x}")
        return out.value

    def dma_read(self, offset: int) -> int:
        with self._lock:
            return self._lib.realm_sim_dma_read(self._handle(), offset)

    def dma_write(self, offset: int, value: int) -> None:
        with self._lock:
            self._lib.realm_sim_dma_write(self._handle(), offset, value & 0xFFFFFFFF)

    def dma_busy(self) -> int:
        with self._lock:
            return self._lib.realm_sim_dma_busy(self._handle())

    def map(self, phys: int, host: np.ndarray) -> None:
        with self._lock:
            self._lib.realm_sim_map(self._handle(), phys, host.ctypes.data, host.nbytes)

    def unmap(self, phys: int) -> None:
        # buffers are unmapped when garbage collected, which may be after close: nothing left to unmap then
        with self._lock:
            if self._h:
                self._lib.realm_sim_unmap(self._h, phys)

    def run(self, max_cycles: int, mask: int = MM2S | S2MM) -> int:
        with self._lock:
            return self._lib.realm_sim_run(self._handle(), max_cycles, mask)

    @property
    def cycles(self) -> int:
        with self._lock:
            return self._lib.realm_sim_cycles(self._handle())

    def raw(self, stream: np.ndarray, out: np.ndarray, max_cycles: int = 1 << 40) -> int:
        """Stream `stream` through the accelerator into `out`; returns the bytes received."""
        with self._lock:
            got = self._lib.realm_sim_raw(
                self._handle(), stream.ctypes.data, stream.nbytes, out.ctypes.data, out.nbytes, max_cycles
            )
        if got < 0:
            raise SimError(f"raw stream did not finish within {max_cycles} cycles")
        return got

    @staticmethod
    def _check(resp: int, what: str) -> None:
        if resp < 0:
            raise SimError(f"AXI-Lite {what}: no handshake from the simulated accelerator")
        if resp != 0:
            raise SimError(f"AXI-Lite {what}: response {resp} (SLVERR/DECERR)")
