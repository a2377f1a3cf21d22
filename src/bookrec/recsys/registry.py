"""Which recommenders exist, by the name the CLI and API use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bookrec.recsys.base import ScoringRecommender
from bookrec.recsys.popularity import PopularityRecommender

ALGORITHMS: dict[str, type[Any]] = {"popularity": PopularityRecommender}
DEFAULT_ALGO = "popularity"


def build(algo: str, params: dict[str, Any] | None = None) -> ScoringRecommender:
    """A fresh, unfitted recommender; raises ValueError for an unknown name or bad params."""
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algo!r}; choose from {', '.join(sorted(ALGORITHMS))}")
    cls = ALGORITHMS[algo]
    model: ScoringRecommender = cls(cls.config_class(**(params or {})))
    return model


def load(algo: str, directory: Path) -> ScoringRecommender:
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algo!r} in artifact {directory}")
    model: ScoringRecommender = ALGORITHMS[algo].load(directory)
    return model
