"""Which recommenders exist, by the name the CLI and API use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bookrec.recsys.base import ScoringRecommender
from bookrec.recsys.components import COMPONENTS, build_from, load_from
from bookrec.recsys.hybrid import DEFAULT_COMPONENTS, HybridRecommender

ALGORITHMS: dict[str, type[Any]] = {**COMPONENTS, HybridRecommender.algo: HybridRecommender}
DEFAULT_ALGO = "hybrid"
HYBRID_COMPONENTS = DEFAULT_COMPONENTS


def build(algo: str, params: dict[str, Any] | None = None) -> ScoringRecommender:
    """A fresh, unfitted recommender; raises ValueError for an unknown name or bad params."""
    return build_from(ALGORITHMS, algo, params)


def load(algo: str, directory: Path) -> ScoringRecommender:
    return load_from(ALGORITHMS, algo, directory)
