"""The active model in memory, answering requests."""
