"""The contract every recommender keeps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from bookrec.recsys.data import Catalog, Filters, Interactions, ReaderHistory


@dataclass(frozen=True)
class Recommendation:
    book_id: int
    score: float


@runtime_checkable
class Recommender(Protocol):
    """fit / recommend / similar / explain / save / load (PRODUCT §4)."""

    algo: ClassVar[str]
    config: Any  # the pydantic model of its hyper-parameters

    def fit(self, interactions: Interactions, catalog: Catalog) -> Recommender: ...

    def recommend(
        self,
        history: ReaderHistory,
        k: int,
        exclude: np.ndarray | None = None,
        filters: Filters | None = None,
    ) -> list[Recommendation]: ...

    def similar(
        self, book_id: int, k: int, filters: Filters | None = None
    ) -> list[Recommendation]: ...

    def explain(self, history: ReaderHistory, book_id: int) -> list[str]: ...

    def save(self, directory: Path) -> dict[str, Any]: ...

    @classmethod
    def load(cls, directory: Path) -> Recommender: ...


def top_k(scores: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Indices of the k best scores (best first) among allowed, finite entries."""
    scores = np.asarray(scores, dtype=np.float64)
    valid = np.isfinite(scores)
    if allowed is not None:
        valid &= allowed
    candidates = np.flatnonzero(valid)
    if len(candidates) == 0 or k <= 0:
        return np.zeros(0, dtype=np.int64)
    if len(candidates) > k:
        part = np.argpartition(-scores[candidates], k - 1)[:k]
        candidates = candidates[part]
    # ties break on the lower index, so results are deterministic
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order]


def allowed_mask(
    catalog: Catalog,
    history: ReaderHistory | None,
    exclude: np.ndarray | None,
    filters: Filters | None,
) -> np.ndarray:
    """Items a list may show: pass the filters, not already in the history, not excluded."""
    mask = (
        filters.allowed(catalog)
        if filters and not filters.is_empty()
        else np.ones(len(catalog.items), dtype=bool)
    )
    for book_ids in (history.book_ids if history is not None else None, exclude):
        if book_ids is not None and len(book_ids):
            index = catalog.items.index(book_ids)
            mask[index[index >= 0]] = False
    return mask
