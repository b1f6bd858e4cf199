"""Arithmetic units, one per file; each is a ``wiring.Component``."""
