"""Popularity recommenders: all-time and trending (time-decayed).

All-time ranks books by how many readers liked them (ratings >= `min_rating`), breaking ties
with a Bayesian-shrunk mean rating; `score="bayesian"` ranks by that shrunk mean instead.
Trending weighs each liked rating by 0.5 ** (age / half-life), age measured from the newest
rating in the data, so it is reproducible on historical data sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from bookrec.recsys.artifacts import read_artifact, write_artifact
from bookrec.recsys.base import Recommendation, ScoringRecommender, allowed_mask, top_k
from bookrec.recsys.data import Catalog, Filters, Interactions, ReaderHistory

DAY = 86_400


class PopularityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["all_time", "trending"] = "all_time"
    score: Literal["liked_count", "bayesian"] = "liked_count"
    min_rating: float = Field(4.0, ge=1, le=5)
    prior_weight: float | None = Field(
        None, ge=0, description="Bayesian prior strength in ratings; default the median count"
    )
    half_life_days: float = Field(30.0, gt=0)


class PopularityRecommender(ScoringRecommender):
    """Same list for everyone, minus what the reader has read and what filters rule out."""

    algo: ClassVar[str] = "popularity"
    config_class: ClassVar[type[PopularityConfig]] = PopularityConfig

    def __init__(self, config: PopularityConfig | None = None) -> None:
        self.config = config or PopularityConfig()
        self.catalog: Catalog | None = None
        self.scores_all: np.ndarray = np.zeros(0, dtype=np.float64)
        self.liked: np.ndarray = np.zeros(0, dtype=np.int64)
        self.counts: np.ndarray = np.zeros(0, dtype=np.int64)
        self.mean: np.ndarray = np.zeros(0, dtype=np.float64)
        self.reference_time: int | None = None

    @property
    def name(self) -> str:
        return "trending" if self.config.mode == "trending" else "popularity"

    def fit(self, interactions: Interactions, catalog: Catalog) -> PopularityRecommender:
        n_items = len(catalog.items)
        item_index = catalog.items.index(interactions.items.ids[interactions.item_index])
        ratings = interactions.rating.astype(np.float64)
        counts = np.bincount(item_index, minlength=n_items)
        totals = np.bincount(item_index, weights=ratings, minlength=n_items)
        liked = ratings >= self.config.min_rating
        self.counts = counts.astype(np.int64)
        self.liked = np.bincount(item_index[liked], minlength=n_items).astype(np.int64)
        global_mean = float(ratings.mean()) if len(ratings) else 0.0
        rated = counts[counts > 0]
        prior = self.config.prior_weight
        if prior is None:
            prior = float(np.median(rated)) if len(rated) else 1.0
        self.mean = (
            (totals + prior * global_mean) / (counts + prior)
            if prior > 0
            else np.divide(totals, counts, out=np.zeros(n_items), where=counts > 0)
        )
        primary: np.ndarray
        if self.config.mode == "trending" and interactions.has_timestamps:
            assert interactions.timestamp is not None
            self.reference_time = int(interactions.timestamp.max())
            age_days = (self.reference_time - interactions.timestamp[liked]) / DAY
            decay = np.power(0.5, age_days / self.config.half_life_days)
            primary = np.bincount(item_index[liked], weights=decay, minlength=n_items)
        elif self.config.score == "bayesian":
            primary = self.mean.copy()
        else:
            # liked counts are whole numbers: adding the shrunk mean / 10 (< 1) breaks their
            # ties by rating without reordering different counts
            primary = self.liked + self.mean / 10
        self.scores_all = np.where(counts > 0, primary, -np.inf)
        self.catalog = catalog
        return self

    def scores(self, histories: sp.csr_matrix) -> np.ndarray:
        """The same scores for every reader; books nobody rated are -inf (never listed)."""
        row = self.scores_all.astype(np.float32)
        return np.broadcast_to(row, (histories.shape[0], len(row)))

    def item_scores(self, item_index: int) -> np.ndarray:
        return np.zeros(len(self.scores_all), dtype=np.float32)

    def _require_fit(self) -> Catalog:
        if self.catalog is None:
            raise RuntimeError("the model is not fitted")
        return self.catalog

    def recommend(
        self,
        history: ReaderHistory,
        k: int,
        exclude: np.ndarray | None = None,
        filters: Filters | None = None,
        diversity: float = 0.0,
    ) -> list[Recommendation]:
        """Most popular first; books nobody rated never appear (`diversity` has no effect)."""
        catalog = self._require_fit()
        allowed = allowed_mask(catalog, history, exclude, filters)
        best = top_k(self.scores_all, k, allowed)
        return [Recommendation(int(catalog.items.ids[i]), float(self.scores_all[i])) for i in best]

    def similar(self, book_id: int, k: int, filters: Filters | None = None) -> list[Recommendation]:
        """Popular books sharing an author or tag with `book_id` (popularity's similar)."""
        catalog = self._require_fit()
        index = int(catalog.items.index([book_id])[0])
        if index < 0:
            return []
        related = np.zeros(len(catalog.items), dtype=bool)
        for matrix in (catalog.authors_matrix(), catalog.tags_matrix()):
            row = matrix[index]
            if row.nnz:
                related |= np.asarray((matrix @ row.T).toarray()).ravel() > 0
        related[index] = False
        if filters is not None and not filters.is_empty():
            related &= filters.allowed(catalog)
        best = top_k(self.scores_all, k, related)
        return [Recommendation(int(catalog.items.ids[i]), float(self.scores_all[i])) for i in best]

    def explain(self, history: ReaderHistory, book_id: int) -> list[str]:
        catalog = self._require_fit()
        index = int(catalog.items.index([book_id])[0])
        if index < 0 or self.counts[index] == 0:
            return []
        liked = int(self.liked[index])
        stars = f"{self.config.min_rating:g}★"
        if self.config.mode == "trending" and self.reference_time is not None:
            return [
                f"trending: liked by many readers lately ({liked:,} readers rated it {stars} "
                "or more in all)"
            ]
        return [
            f"popular: {liked:,} readers rated it {stars} or more "
            f"(average {self.mean[index]:.2f}★ over {int(self.counts[index]):,} ratings)"
        ]

    def save(self, directory: Path) -> dict[str, Any]:
        catalog = self._require_fit()
        manifest = {
            "algo": self.algo,
            "params": self.config.model_dump(),
            "reference_time": self.reference_time,
        }
        arrays = {
            "scores": self.scores_all,
            "liked": self.liked,
            "counts": self.counts,
            "mean": self.mean,
            **catalog.to_arrays(),
        }
        return write_artifact(directory, manifest, arrays)

    @classmethod
    def load(cls, directory: Path) -> PopularityRecommender:
        manifest, arrays = read_artifact(directory)
        model = cls(PopularityConfig(**manifest["params"]))
        model.scores_all = arrays["scores"]
        model.liked = arrays["liked"]
        model.counts = arrays["counts"]
        model.mean = arrays["mean"]
        model.reference_time = manifest.get("reference_time")
        model.catalog = Catalog.from_arrays(arrays)
        return model
