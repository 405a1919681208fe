"""Backends behind one interface: reference, twin, sim and board."""

from .base import Accelerator

__all__ = ["Accelerator"]
