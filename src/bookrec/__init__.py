"""bookrec: a self-hostable book recommendation service."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """`bookrec.__version__`, looked up on first use (the metadata scan costs ~70 ms, which
    every command would otherwise pay at start-up)."""
    if name != "__version__":
        raise AttributeError(f"module 'bookrec' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bookrec")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0.0.0"
