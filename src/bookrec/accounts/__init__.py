"""Readers (and, later, accounts that log in)."""
