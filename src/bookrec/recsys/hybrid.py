"""Hybrid: a blend of recommenders whose weights depend on how much history a reader has.

Each component's scores are standardised per reader (z-scores over the catalogue), then
summed with the weights of the reader's history-length bucket. The weights are learned, not
set by hand: `fit` holds out part of every reader's ratings as a validation split, fits the
components on the rest, and searches each bucket's weights (coordinate ascent over a small
grid) to maximise NDCG@10 on the held-out ratings; the components are then refitted on
everything, except any whose weight is zero in every bucket: it is dropped (not refitted,
not saved). A reader with no history gets the cold-start blend (popularity + content).

EASE's regularisation is chosen on the same validation split: the grid value scoring best
alone, found by climbing the grid from its middle (`_ease_validation_scores`). EASE is not
fitted on the training part at all: only the validation readers' scores are needed, and
those are formed without its n x n weights (`ease.ValidationScores`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from bookrec.recsys import components, metrics
from bookrec.recsys.artifacts import read_artifact, read_manifest, write_artifact
from bookrec.recsys.base import ScoringRecommender
from bookrec.recsys.data import Catalog, Interactions, ReaderHistory
from bookrec.recsys.ease import EaseConfig, ValidationScores
from bookrec.recsys.parallel import for_row_blocks
from bookrec.recsys.splits import random_holdout

WEIGHT_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
DEFAULT_COMPONENTS = ("ease", "itemknn", "als", "content", "popularity")
MIN_GAIN = 0.003  # relative NDCG gain a weight change must bring on validation to be kept
MIN_BUCKET_READERS = 200  # smaller buckets use the weights learned on all readers
NDCG_BLOCK_ROWS = 512  # validation rows blended and ranked at a time, per thread


def _default_components() -> dict[str, dict[str, Any]]:
    return {name: {} for name in DEFAULT_COMPONENTS}


class HybridConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    components: dict[str, dict[str, Any]] = Field(
        default_factory=_default_components,
        description="algorithm name -> its params; popularity is always available for cold start",
    )
    bucket_edges: tuple[int, ...] = Field((10, 50), description="history lengths starting buckets")
    validation_fraction: float = Field(0.2, gt=0, lt=0.5)
    validation_readers: int = Field(2000, ge=50, description="readers sampled to learn weights")
    relevance_threshold: float = 4.0
    ease_l2_grid: tuple[float, ...] = Field(
        (200.0, 500.0, 1250.0),
        description="EASE regularisation values tried on validation (empty: keep the params')",
    )
    seed: int = 7


def _cited_titles(reason: str) -> frozenset[str]:
    """The quoted titles a reason cites ('because you rated "Emma" 5★' → {"Emma"})."""
    return frozenset(re.findall(r'"([^"]+)"', reason))


def _standardise(scores: np.ndarray) -> np.ndarray:
    """Per-row z-scores as float32; rows with no spread become zeros.

    A writeable float32 array is a component's fresh scores (a view of a model's own is
    read-only), so it is standardised in place; anything else is copied first. The standard
    deviation is numpy's, computed from the centred rows already at hand (`np.std` centres
    a copy of its own).
    """
    out = np.require(scores, np.float32, ["C", "W"])
    if not np.isfinite(out).all():
        finite = np.isfinite(out)
        row_min = np.where(finite, out, np.inf).min(axis=1, keepdims=True)
        out = np.where(finite, out, np.where(np.isfinite(row_min), row_min, 0.0))
    out -= out.mean(axis=1, keepdims=True)
    std = np.sqrt(np.square(out).sum(axis=1, keepdims=True) / out.shape[1])
    std[~(std > 0)] = 1.0
    out /= std
    return out


class _Ranking:
    """NDCG@10 of score matrices over one set of validation readers (rows of `relevant`).

    The blend search ranks a few hundred score matrices of 2,000 readers x the catalogue, so
    this is made for repeating: the relevant books are held once as a dense boolean matrix
    (a gather per ranking instead of a sparse lookup), and blocks of rows are formed and
    ranked on the row-block threads (a block, not the whole matrix, is held per thread).
    """

    def __init__(self, relevant: sp.csr_matrix) -> None:
        self.relevant = sp.csr_matrix(relevant).astype(bool).toarray()
        self.n_relevant = np.diff(sp.csr_matrix(relevant).indptr)

    def mean(self, block_of: Callable[[int, int], np.ndarray]) -> float:
        """Mean NDCG@10 of the scores `block_of(start, stop)` gives for those rows, with
        every book that must not be ranked (already seen) at -inf."""
        n = len(self.relevant)
        if n == 0:
            return float("nan")
        per_row = np.empty(n)

        def rank(start: int, stop: int) -> None:
            block = block_of(start, stop)
            width = block.shape[1]
            if width > 10:
                top = np.argpartition(block, width - 10, axis=1)[:, width - 10 :]
            else:
                top = np.broadcast_to(np.arange(width), block.shape).copy()
            order = np.argsort(-np.take_along_axis(block, top, axis=1), axis=1, kind="stable")
            top = np.take_along_axis(top, order, axis=1)
            hits = np.take_along_axis(self.relevant[start:stop], top, axis=1)
            per_row[start:stop] = metrics.ndcg(hits, self.n_relevant[start:stop])

        for_row_blocks(n, NDCG_BLOCK_ROWS, rank)
        return float(per_row.mean())


def _mask_seen(scores: np.ndarray, seen: sp.csr_matrix) -> None:
    """Set the seen books' scores to -inf, in place."""
    coo = seen.tocoo()
    scores[coo.row, coo.col] = -np.inf


def _ndcg_at_10(scores: np.ndarray, relevant: sp.csr_matrix, seen: sp.csr_matrix) -> float:
    """Mean NDCG@10 of score rows against relevant rows, never ranking seen items."""

    def masked(start: int, stop: int) -> np.ndarray:
        block = np.array(scores[start:stop], copy=True)
        _mask_seen(block, seen[start:stop])
        return block

    return _Ranking(relevant).mean(masked)


def _merge_reasons(reasons: list[str], found: list[str]) -> None:
    """Add a component's reasons to a book's: one citing the same books as a kept one
    replaces it if it says more, a new one is appended."""
    for reason in found:
        cited = _cited_titles(reason)
        same = next(
            (i for i, kept in enumerate(reasons) if cited and _cited_titles(kept) == cited), None
        )
        if same is None and reason not in reasons:
            reasons.append(reason)
        elif same is not None and len(reason) > len(reasons[same]):
            reasons[same] = reason


class HybridRecommender(ScoringRecommender):
    algo: ClassVar[str] = "hybrid"
    config_class: ClassVar[type[HybridConfig]] = HybridConfig

    def __init__(self, config: HybridConfig | None = None) -> None:
        self.config = config or HybridConfig()
        self.catalog: Catalog | None = None
        self.components: dict[str, Any] = {}
        # weights[bucket, component]; bucket 0 = no history (cold start)
        self.weights = np.zeros((0, 0), dtype=np.float32)
        self.validation: dict[str, Any] = {}

    # -- fitting -----------------------------------------------------------------------------
    def _build(self) -> dict[str, Any]:
        names = dict(self.config.components)
        names.setdefault("popularity", {})
        return {name: components.build(name, params) for name, params in names.items()}

    def fit(self, interactions: Interactions, catalog: Catalog) -> HybridRecommender:
        self._learn_blend(interactions, catalog)
        return self.refit(interactions, catalog)

    def _learn_blend(self, interactions: Interactions, catalog: Catalog) -> None:
        """Components fitted on a training part, weights learned on the validation part. A
        method of its own so that the split and the dropped components are freed before
        the refit on everything."""
        train, valid = random_holdout(
            interactions, fraction=self.config.validation_fraction, seed=self.config.seed
        )
        self.components = self._build()
        for name, model in self.components.items():
            if name != "ease":  # EASE is only scored here (`_ease_validation_scores`)
                model.fit(train, catalog)
        self.validation = {}
        self.catalog = catalog
        self.weights = self._learn_weights(train, valid, catalog)
        self._drop_unweighted()

    def _drop_unweighted(self) -> None:
        """Components that weigh nothing in any bucket (cold start included) add nothing to a
        score: they are neither refitted nor saved. The validation report keeps their
        single scores and names them under `dropped`."""
        used = np.asarray(self.weights.any(axis=0), dtype=bool)
        names = list(self.components)
        dropped = [name for name, keep in zip(names, used.tolist(), strict=True) if not keep]
        if not dropped:
            return
        self.components = {name: self.components[name] for name in names if name not in dropped}
        self.weights = np.ascontiguousarray(self.weights[:, used])
        self.validation = {**self.validation, "dropped": dropped}

    def refit(self, interactions: Interactions, catalog: Catalog) -> HybridRecommender:
        """Refit every component on `interactions` (ALS from its own factors); the blend
        weights and EASE's chosen params stay (training fits once on the gate's split, then
        refits on everything)."""
        for model in self.components.values():
            model.refit(interactions, catalog)
        self.catalog = catalog
        return self

    @property
    def _searches_ease_l2(self) -> bool:
        """EASE's l2 is chosen on validation unless given (e.g. by `bookrec tune`)."""
        ease = self.config.components.get("ease")
        return ease is not None and bool(self.config.ease_l2_grid) and "l2" not in ease

    def _bucket_of(self, lengths: np.ndarray) -> np.ndarray:
        edges = np.asarray((1, *self.config.bucket_edges))
        return np.searchsorted(edges, lengths, side="right")

    def _learn_weights(
        self, train: Interactions, valid: Interactions, catalog: Catalog
    ) -> np.ndarray:
        seen, relevant = self._validation_rows(train, valid, catalog)
        names = list(self.components)
        # EASE's search first: its n x n arrays are not held beside the others' scores
        ease = (
            self._ease_validation_scores(train, catalog, seen, relevant)
            if "ease" in self.components
            else None
        )
        standardised = [
            _standardise(
                ease if name == "ease" and ease is not None else self._component_scores(name, seen)
            )
            for name in names
        ]
        del ease
        for part in standardised:  # weights are >= 0: a blend keeps the seen books at -inf
            _mask_seen(part, seen)
        overall, overall_score, singles = self._search(standardised, relevant, None)
        buckets = self._bucket_of(np.diff(seen.indptr))
        n_buckets = len(self.config.bucket_edges) + 2
        weights = np.tile(overall, (n_buckets, 1)).astype(np.float32)
        weights[0] = self._default_weights(names, 0)
        report: dict[str, Any] = {
            "readers": int(seen.shape[0]),
            "single_ndcg@10": dict(zip(names, singles, strict=True)),
            "blend_ndcg@10": overall_score,
            "buckets": {},
        }
        for bucket in range(1, n_buckets):
            rows = np.flatnonzero(buckets == bucket)
            if len(rows) < MIN_BUCKET_READERS:
                continue
            weights[bucket], score, _ = self._search(
                standardised, relevant, rows, overall, passes=1
            )
            report["buckets"][str(bucket)] = {"readers": len(rows), "ndcg@10": score}
        self.validation = {**self.validation, **report}
        return weights

    def _validation_rows(
        self, train: Interactions, valid: Interactions, catalog: Catalog
    ) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """The sampled validation readers' training rows and liked held-out books, over the
        catalog (a function of its own so that the whole-split matrices are freed before the
        EASE fits)."""
        items = catalog.items.index(train.items.ids[train.item_index])
        n_items = len(catalog.items)
        seen_all = sp.csr_matrix(
            (train.rating, (train.user_index, items)), shape=(len(train.users), n_items)
        )
        valid_items = catalog.items.index(valid.items.ids[valid.item_index])
        liked = valid.rating >= self.config.relevance_threshold
        relevant_all = sp.csr_matrix(
            (
                np.ones(int(liked.sum()), np.float32),
                (valid.users.index(valid.users.ids[valid.user_index[liked]]), valid_items[liked]),
            ),
            shape=(len(valid.users), n_items),
        )
        # rows of the validation readers in the training matrix
        readers = np.flatnonzero(np.diff(relevant_all.indptr) > 0)
        rng = np.random.default_rng(self.config.seed)
        if len(readers) > self.config.validation_readers:
            readers = np.sort(rng.choice(readers, self.config.validation_readers, replace=False))
        train_rows = train.users.index(valid.users.ids[readers])
        keep = train_rows >= 0
        return seen_all[train_rows[keep]], relevant_all[readers[keep]]

    def _ease_validation_scores(
        self, train: Interactions, catalog: Catalog, seen: sp.csr_matrix, relevant: sp.csr_matrix
    ) -> np.ndarray:
        """EASE's scores for the validation readers, at its regularisation chosen here (unless
        given); the refit on all the data fits it with that value.

        Only these readers' scores are needed, so no B is formed (`ValidationScores`: per
        value a Cholesky inverse, then the readers' rows times it and times XᵀY). Each value
        still costs an n³ inverse, so the grid is climbed rather than swept: the middle
        value first, then its neighbours one way while they score better, and the other way
        only if the first brought nothing. Validation NDCG is unimodal in λ in every run
        measured, so this finds the sweep's choice with fewer inverses (two of three when
        the smallest value wins, as on movielens-small and the demo data).
        """
        base = dict(self.config.components.get("ease", {}))
        validation = ValidationScores(EaseConfig(**base), train, catalog, seen)
        if not self._searches_ease_l2:
            return validation.scores(EaseConfig(**base).l2)
        grid = sorted(self.config.ease_l2_grid)
        tried: list[dict[str, Any]] = []
        best: tuple[float, int, np.ndarray] | None = None

        def better(index: int) -> bool:
            """Score grid[index]; keep it if it beats the best so far."""
            nonlocal best
            scores = validation.scores(grid[index])
            score = _ndcg_at_10(scores, relevant, seen)
            # the weight as fitted: 1 when the data has no liked (or no other) rating
            tried.append(
                {"l2": grid[index], "unliked_weight": validation.unliked_weight, "ndcg@10": score}
            )
            if best is not None and score <= best[0]:
                return False
            best = (score, index, scores)
            return True

        middle = len(grid) // 2
        better(middle)
        for step in (-1, 1):
            index, moved = middle + step, False
            while 0 <= index < len(grid) and better(index):
                index, moved = index + step, True
            if moved:
                break
        assert best is not None
        chosen = grid[best[1]]
        self.components["ease"] = components.build("ease", {**base, "l2": chosen})
        self.validation["ease"] = {
            "chosen": {"l2": chosen, "unliked_weight": validation.unliked_weight},
            "tried": tried,
        }
        return best[2]

    def _default_weights(self, names: list[str], bucket: int) -> np.ndarray:
        """Cold start (no history): popularity, nudged by content once there is a profile."""
        return np.asarray(
            [1.0 if n == "popularity" else 0.5 if n == "content" else 0.0 for n in names],
            dtype=np.float32,
        )

    def _search(
        self,
        standardised: list[np.ndarray],
        relevant: sp.csr_matrix,
        rows: np.ndarray | None,
        start: np.ndarray | None = None,
        passes: int = 2,
    ) -> tuple[np.ndarray, float, list[float]]:
        """Coordinate ascent over WEIGHT_GRID from the best single component (or `start`), on
        the validation readers `rows` (None: all of them, without copying their scores).

        The components' scores come standardised, with the seen books at -inf. A change is
        kept only if it raises validation NDCG@10 by MIN_GAIN (relative), so noise does not
        buy a component weight. Returns weights, their score, single scores.
        """
        parts = standardised if rows is None else [z[rows] for z in standardised]
        ranking = _Ranking(relevant if rows is None else relevant[rows])
        # one blend buffer and one scratch for every candidate: blocks of rows are written
        # in place by the ranking's threads, no matrix-sized temporaries
        blend, scratch = np.empty_like(parts[0]), np.empty_like(parts[0])

        def score_of(candidate: np.ndarray) -> float:
            used = [(weight, part) for weight, part in zip(candidate, parts, strict=True) if weight]

            def blended(start: int, stop: int) -> np.ndarray:
                out, term = blend[start:stop], scratch[start:stop]
                np.multiply(used[0][1][start:stop], used[0][0], out=out)
                for weight, part in used[1:]:
                    np.multiply(part[start:stop], weight, out=term)
                    out += term
                return out

            return ranking.mean(blended)

        singles = [score_of(np.eye(len(parts), dtype=np.float32)[i]) for i in range(len(parts))]
        weights = (
            start.copy()
            if start is not None
            else np.eye(len(parts), dtype=np.float32)[int(np.argmax(singles))]
        )
        best = score_of(weights)
        for _ in range(passes):
            improved = False
            for index in range(len(parts)):
                for value in WEIGHT_GRID:
                    candidate = weights.copy()
                    candidate[index] = value
                    if not candidate.any() or np.array_equal(candidate, weights):
                        continue
                    score = score_of(candidate)
                    if score > best * (1 + MIN_GAIN):
                        best, weights, improved = score, candidate, True
            if not improved:
                break
        return weights, best, singles

    # -- scoring -----------------------------------------------------------------------------
    def _component_scores(self, name: str, histories: sp.csr_matrix) -> np.ndarray:
        return np.asarray(self.components[name].scores(histories), dtype=np.float32)

    def scores(self, histories: sp.csr_matrix) -> np.ndarray:
        names = list(self.components)
        buckets = self._bucket_of(np.diff(histories.tocsr().indptr))
        total = np.zeros((histories.shape[0], len(self.require_catalog().items)), np.float32)
        for index, name in enumerate(names):
            per_row = self.weights[buckets, index][:, None]
            if not per_row.any():
                continue
            standardised = _standardise(self._component_scores(name, histories))
            standardised *= per_row  # in place: a batch's block is tens of MB
            total += standardised
        return total

    def item_scores(self, item_index: int) -> np.ndarray:
        for name in ("content", "itemknn", "ease", "als"):
            if name in self.components:
                return np.asarray(self.components[name].item_scores(item_index))
        return np.zeros(len(self.require_catalog().items), np.float32)

    def explain(self, history: ReaderHistory, book_id: int) -> list[str]:
        """Reasons from the components that weigh most for this reader, best first.

        A book none of them can explain (e.g. one that scored on a latent factor) gets the
        reasons of the other components, so every recommended book says why it is there. Two
        components citing the same books make one reason (the one that says more), not two.
        """
        return self.explain_many(history, [book_id])[0]

    def explain_many(self, history: ReaderHistory, book_ids: Sequence[int]) -> list[list[str]]:
        """`explain` for a whole list: each component explains, in one call, the books that
        still need its reasons."""
        bucket = int(self._bucket_of(np.asarray([len(history)]))[0])
        names = list(self.components)
        reasons: list[list[str]] = [[] for _ in book_ids]
        open_books = list(range(len(book_ids)))  # positions still taking reasons
        for index in np.argsort(-self.weights[bucket], kind="stable"):
            if self.weights[bucket, index] <= 0:  # weightless: only for books without a reason
                open_books = [i for i in open_books if not reasons[i]]
            if not open_books:
                break
            explained = self.components[names[index]].explain_many(
                history, [book_ids[i] for i in open_books]
            )
            for i, found in zip(open_books, explained, strict=True):
                _merge_reasons(reasons[i], found)
            open_books = [i for i in open_books if len(reasons[i]) < 3]
        return [kept[:3] for kept in reasons]

    # -- persistence -------------------------------------------------------------------------
    def save(self, directory: Path) -> dict[str, Any]:
        catalog = self.require_catalog()
        manifest = write_artifact(
            directory,
            {
                "algo": self.algo,
                "params": self.config.model_dump(mode="json"),
                "components": list(self.components),
                "validation": self.validation,
            },
            {"weights": self.weights, **catalog.to_arrays()},
        )
        for name, model in self.components.items():
            model.save(Path(directory) / "components" / name)
        return manifest

    @classmethod
    def load(cls, directory: Path) -> HybridRecommender:
        manifest, arrays = read_artifact(directory)
        model = cls(HybridConfig(**manifest["params"]))
        model.weights = np.asarray(arrays["weights"])
        model.catalog = Catalog.from_arrays(arrays)
        model.validation = manifest.get("validation", {})
        for name in manifest["components"]:
            path = Path(directory) / "components" / name
            read_manifest(path)
            model.components[name] = components.load(name, path)
        return model
