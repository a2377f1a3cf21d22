"""The size of goodbooks-10k, which synthetic ratings imitate by default (no numpy here: the
CLI shows these as option defaults without loading the generator)."""

from __future__ import annotations

GOODBOOKS_READERS = 53_424
GOODBOOKS_RATINGS = 5_976_479
DEFAULT_SEED = 42
