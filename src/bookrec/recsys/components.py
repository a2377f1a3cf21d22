"""The single recommenders, by name: what the hybrid blends and `registry` lists with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bookrec.recsys.als import AlsRecommender
from bookrec.recsys.base import ScoringRecommender
from bookrec.recsys.content import ContentRecommender
from bookrec.recsys.ease import EaseRecommender
from bookrec.recsys.knn import ItemKnnRecommender
from bookrec.recsys.popularity import PopularityRecommender

COMPONENTS: dict[str, type[Any]] = {
    model.algo: model
    for model in (
        PopularityRecommender,
        ContentRecommender,
        ItemKnnRecommender,
        AlsRecommender,
        EaseRecommender,
    )
}


def build_from(
    algorithms: dict[str, type[Any]], algo: str, params: dict[str, Any] | None
) -> ScoringRecommender:
    """A fresh, unfitted recommender from `algorithms`; ValueError for an unknown name or
    bad params."""
    if algo not in algorithms:
        raise ValueError(f"unknown algorithm {algo!r}; choose from {', '.join(sorted(algorithms))}")
    cls = algorithms[algo]
    try:
        config = cls.config_class(**(params or {}))
    except ValidationError as exc:
        raise ValueError(describe_params_error(algo, cls.config_class, exc)) from None
    model: ScoringRecommender = cls(config)
    return model


def describe_params_error(algo: str, config_class: type[Any], error: ValidationError) -> str:
    """One readable sentence per bad parameter: an unknown name lists the accepted ones."""
    accepted = ", ".join(config_class.model_fields)
    problems = []
    for item in error.errors(include_url=False):
        name = ".".join(str(part) for part in item["loc"]) or "params"
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown parameter {name!r} for {algo}; accepted: {accepted}")
        else:
            problems.append(
                f"bad value for {algo} parameter {name!r}: {item['input']!r}: {item['msg']}"
            )
    return "; ".join(problems)


def load_from(algorithms: dict[str, type[Any]], algo: str, directory: Path) -> ScoringRecommender:
    """A saved recommender of `algorithms`; ValueError for an unknown name."""
    if algo not in algorithms:
        raise ValueError(f"unknown algorithm {algo!r} in artifact {directory}")
    model: ScoringRecommender = algorithms[algo].load(directory)
    return model


def build(algo: str, params: dict[str, Any] | None = None) -> ScoringRecommender:
    """A fresh, unfitted single recommender."""
    return build_from(COMPONENTS, algo, params)


def load(algo: str, directory: Path) -> ScoringRecommender:
    """A saved single recommender."""
    return load_from(COMPONENTS, algo, directory)
