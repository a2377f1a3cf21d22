"""Which recommenders exist, by the name the CLI and API use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bookrec.recsys.als import AlsRecommender
from bookrec.recsys.base import ScoringRecommender
from bookrec.recsys.content import ContentRecommender
from bookrec.recsys.ease import EaseRecommender
from bookrec.recsys.hybrid import DEFAULT_COMPONENTS, HybridRecommender
from bookrec.recsys.knn import ItemKnnRecommender
from bookrec.recsys.popularity import PopularityRecommender

ALGORITHMS: dict[str, type[Any]] = {
    model.algo: model
    for model in (
        PopularityRecommender,
        ContentRecommender,
        ItemKnnRecommender,
        AlsRecommender,
        EaseRecommender,
        HybridRecommender,
    )
}
DEFAULT_ALGO = "hybrid"
HYBRID_COMPONENTS = DEFAULT_COMPONENTS


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
