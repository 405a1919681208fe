"""Timing-error model: device profiles, per-PE slack tables and the numpy reference emulation."""
