"""Name -> backend constructor, with the reason a backend is unavailable on this machine."""

from __future__ import annotations

from ..errors import BackendUnavailable
from .base import Accelerator


def open_backend(kind: str, **options) -> Accelerator:
    if kind == "reference":
        from .reference import ReferenceAccelerator

        return ReferenceAccelerator(**options)
    if kind == "sim":
        from .pynq_backend import open_sim

        return open_sim(**options)
    if kind == "twin":
        from .twin import TwinAccelerator

        return TwinAccelerator(**options)
    if kind == "board":
        from .board import open_board

        return open_board(**options)
    raise BackendUnavailable(f"unknown backend {kind!r}: choose one of board, sim, twin, reference")
