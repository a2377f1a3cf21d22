"""Data sets: the record of each import, and synthetic ratings generated for demos and tests."""
