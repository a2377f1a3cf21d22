"""Offline evaluation on the database's data: comparison reports, hyper-parameter search."""
