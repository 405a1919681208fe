"""Backends behind one interface (realm_hil.accelerator): reference, twin, sim and board, in one table (registry.py)."""
