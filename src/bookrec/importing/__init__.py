"""Importing goodbooks-layout directories: transactional, idempotent, streamed."""
