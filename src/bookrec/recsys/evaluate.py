"""Offline evaluation: fit models on a train split, rank for test readers, score the lists.

The protocol is the reference one (`refeval.py`): relevant = a reader's held-out ratings at or
above `relevance_threshold`; every reader with at least one relevant item gets a top-K list
that never contains a book from their training history; accuracy metrics are averaged over
those readers. Beyond accuracy it reports catalog coverage, intra-list diversity, novelty,
popularity bias and how accuracy changes with the length of a reader's history.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from bookrec.recsys.base import Recommendation
from bookrec.recsys.data import Catalog, Filters, IdMap, Interactions, ReaderHistory
from bookrec.recsys.metrics import (
    catalog_coverage,
    hit_matrix,
    intra_list_diversity,
    novelty,
    popular_share,
    ranking_metrics,
    top_popular_mask,
)

__all__ = [
    "DEFAULT_HISTORY_BINS",
    "BatchModel",
    "EvaluationResult",
    "HistoryBreakdown",
    "Model",
    "PopularityBias",
    "by_history_length",
    "evaluate",
    "popularity_bias",
]

DEFAULT_HISTORY_BINS: tuple[int, ...] = (0, 1, 5, 10, 20, 50, 100, 200, 500)


class Model(Protocol):
    """What the evaluator needs of a model: `fit` and per-reader `recommend`."""

    def fit(self, interactions: Interactions, catalog: Catalog) -> object: ...

    def recommend(
        self,
        history: ReaderHistory,
        k: int,
        exclude: np.ndarray | None = None,
        filters: Filters | None = None,
    ) -> list[Recommendation]: ...


@runtime_checkable
class BatchModel(Protocol):
    """A model that ranks many readers at once (`ScoringRecommender` and its subclasses)."""

    def recommend_batch(
        self,
        histories: sp.csr_matrix,
        k: int,
        exclude: sp.csr_matrix | None = None,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]: ...


def _json_float(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _json_array(values: np.ndarray) -> list[Any]:
    if np.issubdtype(values.dtype, np.floating):
        return [None if not math.isfinite(v) else float(v) for v in values.tolist()]
    return list(values.tolist())


@dataclass(frozen=True)
class EvaluationResult:
    """Metrics of each model on one split, with the per-reader detail behind them.

    Per-reader arrays are aligned with `user_ids` (dataset ids of the evaluated readers);
    `recommendations[model]` holds their top-K lists as catalog item indices (-1 padded).
    """

    k: int
    relevance_threshold: float
    user_ids: np.ndarray
    history_length: np.ndarray  # training ratings per evaluated reader
    n_relevant: np.ndarray  # relevant held-out items per evaluated reader
    metrics: dict[str, dict[str, float]]  # model -> metric -> mean over readers
    per_user: dict[str, dict[str, np.ndarray]]  # model -> metric -> per-reader values
    recommendations: dict[str, np.ndarray]
    fit_seconds: dict[str, float | None]  # None: the model came fitted
    recommend_seconds: dict[str, float]
    item_counts: np.ndarray  # distinct training readers per catalog item
    n_items: int
    counts: dict[str, int] = field(default_factory=dict)  # sizes of the split

    @property
    def model_names(self) -> list[str]:
        return list(self.metrics)

    @property
    def metric_names(self) -> list[str]:
        first = next(iter(self.metrics.values()), {})
        return list(first)

    def to_dict(self, per_user: bool = True) -> dict[str, Any]:
        """Plain JSON-ready data (NaN becomes null); per-reader arrays only if `per_user`."""
        data: dict[str, Any] = {
            "k": self.k,
            "relevance_threshold": self.relevance_threshold,
            "models": self.model_names,
            "metrics": {
                model: {name: _json_float(value) for name, value in values.items()}
                for model, values in self.metrics.items()
            },
            "timings": {
                model: {
                    "fit_seconds": _json_float(self.fit_seconds[model]),
                    "recommend_seconds": _json_float(self.recommend_seconds[model]),
                }
                for model in self.metrics
            },
            "counts": {
                **self.counts,
                "evaluated_users": len(self.user_ids),
                "catalog_items": self.n_items,
            },
            "popularity_bias": popularity_bias(self).to_dict(),
            "by_history_length": {
                metric: by_history_length(self, metric=metric).to_dict()
                for metric in ("ndcg", "recall")
            },
        }
        if per_user:
            data["per_user"] = {
                "user_ids": _json_array(self.user_ids),
                "history_length": _json_array(self.history_length),
                "n_relevant": _json_array(self.n_relevant),
                "metrics": {
                    model: {name: _json_array(values) for name, values in metrics.items()}
                    for model, metrics in self.per_user.items()
                },
            }
        return data


@dataclass(frozen=True)
class HistoryBreakdown:
    """One metric's mean per bin of training-history length, per model."""

    metric: str
    edges: list[int]  # bin i holds lengths in [edges[i], edges[i + 1]); the last is open
    labels: list[str]
    users: list[int]  # evaluated readers per bin
    values: dict[str, list[float]]  # model -> mean per bin (NaN for an empty bin)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "edges": self.edges,
            "labels": self.labels,
            "users": self.users,
            "values": {m: [_json_float(v) for v in vs] for m, vs in self.values.items()},
        }


@dataclass(frozen=True)
class PopularityBias:
    """How much of each model's lists go to the most popular `top_fraction` of the catalog."""

    top_fraction: float
    n_popular: int
    catalog_share: float  # n_popular / catalog size: the share under no popularity bias
    rating_share: float  # share of training readers' ratings that went to those items
    per_model: dict[str, float]  # share of recommended slots holding one of them

    def to_dict(self) -> dict[str, Any]:
        return {
            "top_fraction": self.top_fraction,
            "n_popular": self.n_popular,
            "catalog_share": _json_float(self.catalog_share),
            "rating_share": _json_float(self.rating_share),
            "per_model": {m: _json_float(v) for m, v in self.per_model.items()},
        }


# -- the evaluation --------------------------------------------------------------------------


def _catalog_index(interactions: Interactions, catalog: Catalog, name: str) -> np.ndarray:
    index = catalog.items.index(interactions.items.ids[interactions.item_index])
    if (index < 0).any():
        raise ValueError(f"the {name} set names books that are not in the catalog")
    return index


@dataclass(frozen=True)
class _Readers:
    """The evaluated readers' training histories, in row order of `user_ids`."""

    user_ids: np.ndarray
    indptr: np.ndarray
    items: np.ndarray  # catalog item indices
    ratings: np.ndarray
    timestamps: np.ndarray | None
    n_items: int

    def matrix(self) -> sp.csr_matrix:
        return sp.csr_matrix(
            (self.ratings.astype(np.float32), self.items, self.indptr),
            shape=(len(self.user_ids), self.n_items),
        )

    def history(self, row: int, catalog: Catalog) -> ReaderHistory:
        rows = slice(self.indptr[row], self.indptr[row + 1])
        return ReaderHistory(
            book_ids=catalog.items.ids[self.items[rows]],
            ratings=self.ratings[rows],
            timestamps=None if self.timestamps is None else self.timestamps[rows],
        )


def _readers(
    train: Interactions, train_items: np.ndarray, user_ids: np.ndarray, n_items: int
) -> _Readers:
    row = IdMap(user_ids).index(train.users.ids[train.user_index])
    keep = np.flatnonzero(row >= 0)
    order = keep[np.argsort(row[keep], kind="stable")]
    counts = np.bincount(row[keep], minlength=len(user_ids))
    return _Readers(
        user_ids=user_ids,
        indptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        items=train_items[order].astype(np.int64),
        ratings=train.rating[order],
        timestamps=None if train.timestamp is None else train.timestamp[order],
        n_items=n_items,
    )


def _rank(model: Model, readers: _Readers, catalog: Catalog, k: int) -> np.ndarray:
    """Top-k catalog item indices (-1 padded) for every reader, batched when the model can."""
    if isinstance(model, BatchModel):
        indices, _ = model.recommend_batch(readers.matrix(), k)
        ranked = np.full((len(readers.user_ids), k), -1, dtype=np.int64)
        width = min(k, indices.shape[1])
        ranked[:, :width] = indices[:, :width]
        return ranked
    ranked = np.full((len(readers.user_ids), k), -1, dtype=np.int64)
    for row in range(len(readers.user_ids)):  # the model only ranks one reader at a time
        history = readers.history(row, catalog)
        books = [r.book_id for r in model.recommend(history, k, exclude=history.book_ids)][:k]
        if books:
            ranked[row, : len(books)] = catalog.items.index(np.asarray(books, dtype=np.int64))
    return ranked


def _check_catalog(name: str, model: Model, catalog: Catalog) -> None:
    fitted = getattr(model, "catalog", None)
    if isinstance(fitted, Catalog) and not np.array_equal(fitted.items.ids, catalog.items.ids):
        raise ValueError(f"model {name!r} was fitted on a different catalog")


def evaluate(
    models: Mapping[str, Model],
    train: Interactions,
    test: Interactions,
    catalog: Catalog,
    k: int = 10,
    relevance_threshold: float = 4.0,
    fit: bool = True,
    item_vectors: sp.spmatrix | np.ndarray | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> EvaluationResult:
    """Fit (unless `fit=False`: models come fitted on `train`), rank and score every model.

    Readers evaluated: those with at least one test rating >= `relevance_threshold`. Each gets
    a top-`k` list excluding their training books. `item_vectors` (one row per catalog item)
    drive intra-list diversity; by default the item columns of the binary train matrix.
    `progress(stage, percent)` hears of each model's fit and ranking.
    """
    report = progress or (lambda _stage, _percent: None)
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    n_items = len(catalog.items)
    train_items = _catalog_index(train, catalog, "train")
    test_items = _catalog_index(test, catalog, "test")
    liked = test.rating >= relevance_threshold
    test_user_ids = test.users.ids[test.user_index]
    user_ids = np.unique(test_user_ids[liked])
    readers = _readers(train, train_items, user_ids, n_items)
    relevant_rows = IdMap(user_ids).index(test_user_ids[liked])
    relevant = sp.csr_matrix(
        (np.ones(int(liked.sum()), dtype=np.float32), (relevant_rows, test_items[liked])),
        shape=(len(user_ids), n_items),
    )

    train_user_ids = train.users.ids[train.user_index]
    train_binary = sp.csr_matrix(
        (np.ones(len(train), dtype=np.float32), (train.user_index, train_items)),
        shape=(len(train.users), n_items),
    )
    train_binary.data[:] = 1.0  # duplicates summed above count once
    item_counts = np.asarray(train_binary.sum(axis=0)).ravel().astype(np.int64)
    n_train_users = len(np.unique(train_user_ids))
    vectors = item_vectors if item_vectors is not None else train_binary.T.tocsr()
    history_matrix = readers.matrix()

    metrics: dict[str, dict[str, float]] = {}
    per_user: dict[str, dict[str, np.ndarray]] = {}
    recommendations: dict[str, np.ndarray] = {}
    fit_seconds: dict[str, float | None] = {}
    recommend_seconds: dict[str, float] = {}
    for number, (name, model) in enumerate(models.items()):
        fit_seconds[name] = None
        if fit:
            report(f"fitting {name}", 100 * number / len(models))
            start = time.perf_counter()
            model.fit(train, catalog)
            fit_seconds[name] = time.perf_counter() - start
        _check_catalog(name, model, catalog)
        report(f"ranking {name}", 100 * (number + 0.5) / len(models))
        start = time.perf_counter()
        ranked = _rank(model, readers, catalog, k)
        recommend_seconds[name] = time.perf_counter() - start
        leaked, _ = hit_matrix(ranked, history_matrix)
        if leaked.any():
            raise ValueError(f"model {name!r} recommended books from a reader's training history")
        accuracy = ranking_metrics(ranked, relevant, k)
        values = {f"{metric}@{k}": array for metric, array in accuracy.per_user.items()}
        values["diversity"] = intra_list_diversity(ranked, vectors)
        values["novelty"] = novelty(ranked, item_counts, n_train_users)
        means = {metric: _nanmean(array) for metric, array in values.items()}
        means["coverage"] = catalog_coverage(ranked, n_items)
        metrics[name] = means
        per_user[name] = values
        recommendations[name] = ranked

    return EvaluationResult(
        k=k,
        relevance_threshold=relevance_threshold,
        user_ids=user_ids,
        history_length=np.diff(readers.indptr),
        n_relevant=np.diff(relevant.indptr).astype(np.int64),
        metrics=metrics,
        per_user=per_user,
        recommendations=recommendations,
        fit_seconds=fit_seconds,
        recommend_seconds=recommend_seconds,
        item_counts=item_counts,
        n_items=n_items,
        counts={
            "train_ratings": len(train),
            "test_ratings": len(test),
            "train_users": n_train_users,
            "test_users": len(np.unique(test_user_ids)),
        },
    )


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else float("nan")


# -- breakdowns ------------------------------------------------------------------------------


def _metric_key(result: EvaluationResult, metric: str) -> str:
    names = result.metric_names
    for candidate in (metric, f"{metric}@{result.k}"):
        if candidate in names and candidate in next(iter(result.per_user.values()), {}):
            return candidate
    raise KeyError(f"no per-reader metric {metric!r}; have {', '.join(names)}")


def _bin_label(low: int, high: int | None) -> str:
    if high is None:
        return f"{low}+"
    if high - low == 1:
        return str(low)
    return f"{low}–{high - 1}"


def by_history_length(
    result: EvaluationResult, bins: Sequence[int] = DEFAULT_HISTORY_BINS, metric: str = "ndcg"
) -> HistoryBreakdown:
    """Mean `metric` per bin of training-history length (bins given by increasing edges).

    Bin i holds readers with edges[i] <= length < edges[i + 1]; the last bin is open-ended.
    Readers shorter than edges[0] are left out.
    """
    edges = [int(edge) for edge in bins]
    if not edges or any(b <= a for a, b in itertools.pairwise(edges)):
        raise ValueError("bins must be a non-empty, strictly increasing sequence of edges")
    model_names = result.model_names
    key = _metric_key(result, metric) if model_names else metric
    position = np.searchsorted(np.asarray(edges), result.history_length, side="right") - 1
    n_bins = len(edges)
    in_range = position >= 0
    users = np.bincount(position[in_range], minlength=n_bins)
    values: dict[str, list[float]] = {}
    for model in model_names:
        array = result.per_user[model][key]
        usable = in_range & np.isfinite(array)
        sums = np.bincount(position[usable], weights=array[usable], minlength=n_bins)
        counts = np.bincount(position[usable], minlength=n_bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            values[model] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan).tolist()
    labels = [
        _bin_label(low, edges[index + 1] if index + 1 < n_bins else None)
        for index, low in enumerate(edges)
    ]
    return HistoryBreakdown(
        metric=key, edges=edges, labels=labels, users=users.tolist(), values=values
    )


def popularity_bias(result: EvaluationResult, top_fraction: float = 0.1) -> PopularityBias:
    """Share of each model's recommendations that go to the `top_fraction` most popular items.

    Popularity is the number of training readers; compare each model's share with
    `catalog_share` (what a popularity-blind list would give) and `rating_share`.
    """
    if not 0.0 < top_fraction <= 1.0:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    popular = top_popular_mask(result.item_counts, top_fraction)
    total = int(result.item_counts.sum())
    return PopularityBias(
        top_fraction=top_fraction,
        n_popular=int(popular.sum()),
        catalog_share=float(popular.mean()) if len(popular) else float("nan"),
        rating_share=float(result.item_counts[popular].sum() / total) if total else float("nan"),
        per_model={
            model: popular_share(ranked, popular)
            for model, ranked in result.recommendations.items()
        },
    )
