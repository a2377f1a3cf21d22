"""Implicit-feedback matrix factorisation (ALS), with fold-in for readers it never saw.

Model (Hu, Koren & Volinsky 2008, as `implicit` implements it): every rating becomes a
preference p_ui = 1 with confidence c_ui = alpha * w_ui, where the weight w_ui is 1
("binary"), the rating ("rating") or its Okapi BM25 weight ("bm25": the rating damped by the
reader's history length and scaled by the book's inverse reader frequency). Unrated pairs have
p = 0, c = 1. ALS alternates exact-ish least-squares solves for user factors X and item
factors Y minimising sum_ui c_ui (p_ui - x_u.y_i)^2 + lambda (|X|^2 + |Y|^2).

Fold-in: only Y is kept. For any history row (a new reader, or a reader with new ratings) the
user vector is the same least-squares solve with Y fixed,

    x_u = (Y'Y + Y'(C_u - I)Y + lambda I)^-1 Y' C_u p_u,

whose Y'Y is computed once; the per-row factors x factors systems are solved in native code
(`implicit`'s `recalculate_user`, Cholesky). A batch of many rows (every reader's list at
training, an evaluation) is solved by conjugate gradient instead, as the fit itself does, at
a fraction of the cost; rows whose residual is not yet small are then solved exactly. Scores
are x_u . y_i, so a reader's new ratings change their recommendations at once, without
retraining. Similar books are cosines of item factors; an explanation names the history books
whose factors point closest to the book, weighted by their confidence.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from implicit.cpu import _als as native  # type: ignore[import-untyped]
from implicit.cpu.als import AlternatingLeastSquares  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

from bookrec.recsys.artifacts import read_artifact, write_artifact
from bookrec.recsys.base import ScoringRecommender, because
from bookrec.recsys.data import Catalog, IdMap, Interactions, ReaderHistory

PARALLEL_ROWS = 64  # fold-in batches this large use every core
#: fold-in batches this large are solved by conjugate gradient (`_fold_in_many`): this many
#: steps, then an exact solve for every row whose residual is above FOLD_IN_TOLERANCE x |b|
CG_ROWS = 256
FOLD_IN_CG_STEPS = 10
FOLD_IN_TOLERANCE = 1e-4
#: alternations of a refit that starts from a fit on nearly the same ratings (see `refit`)
REFIT_ITERATIONS = 3


@functools.cache
def _controller() -> Any:
    return ThreadpoolController()


def _single_threaded_blas() -> Any:
    """A context that limits BLAS to one thread (implicit runs its own thread pool).

    One ThreadpoolController is created lazily and reused: creating one scans every loaded
    library (~1 ms), limiting through it costs microseconds.
    """
    return _controller().limit(limits=1, user_api="blas")


class AlsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    factors: int = Field(64, ge=1, le=1024)
    regularization: float = Field(0.05, gt=0)
    iterations: int = Field(15, ge=1)
    alpha: float = Field(2.0, gt=0, description="confidence = alpha * weight")
    weighting: Literal["binary", "rating", "bm25"] = "binary"
    bm25_k1: float = Field(100, ge=0)
    bm25_b: float = Field(0.8, ge=0, le=1)
    min_rating: float = Field(0.0, description="ratings below this are dropped")
    seed: int = 1


class AlsRecommender(ScoringRecommender):
    """Implicit ALS over the catalog's items; readers are folded in from their history."""

    algo: ClassVar[str] = "als"
    config_class: ClassVar[type[AlsConfig]] = AlsConfig

    def __init__(self, config: AlsConfig | None = None) -> None:
        self.config = config or AlsConfig()
        self.catalog: Catalog | None = None
        self.item_factors = np.zeros((0, self.config.factors), dtype=np.float32)
        self.user_factors: np.ndarray | None = None  # training readers' factors (not saved)
        self.user_ids: np.ndarray | None = None  # their ids, aligned with user_factors
        self.idf = np.zeros(0, dtype=np.float32)  # bm25 only
        self.average_length = 1.0  # bm25 only: mean history weight of training readers
        self._unit_items = np.zeros((0, self.config.factors), dtype=np.float32)
        self._regularized_gram = np.zeros((self.config.factors,) * 2, dtype=np.float32)
        self._model: Any = None
        self._model_single: Any = None

    # -- weighting ---------------------------------------------------------------------------
    def confidence(self, ratings: sp.csr_matrix) -> sp.csr_matrix:
        """Rows of ratings -> rows of confidences alpha * weight; modifies `ratings` in place.

        Ratings below `min_rating` are dropped, and so are entries whose weight is not positive.
        """
        cfg = self.config
        data = ratings.data
        if cfg.min_rating > 0 or (data <= 0).any():
            data[data < cfg.min_rating] = 0
            data[data < 0] = 0
            ratings.eliminate_zeros()
            data = ratings.data
        if cfg.weighting == "binary":
            data.fill(cfg.alpha)
        elif cfg.weighting == "rating":
            if cfg.alpha != 1:
                data *= np.float32(cfg.alpha)
        else:
            rows = np.repeat(np.arange(ratings.shape[0]), np.diff(ratings.indptr))
            lengths = np.bincount(rows, weights=data, minlength=ratings.shape[0])
            norm = (1 - cfg.bm25_b) + cfg.bm25_b * lengths / self.average_length
            data *= (
                (cfg.alpha * (cfg.bm25_k1 + 1)) / (cfg.bm25_k1 * norm[rows] + data)
            ) * self.idf[ratings.indices]
        return ratings

    def _fit_bm25(self, ratings: sp.csr_matrix) -> None:
        """Item idf and mean history length from the training matrix (BM25, as implicit's)."""
        kept = ratings.data >= max(self.config.min_rating, np.finfo(np.float32).tiny)
        readers = max(ratings.shape[0], 1)
        frequency = np.bincount(ratings.indices[kept], minlength=ratings.shape[1])
        # floored: a book nearly everyone read still counts as a (weak) positive
        self.idf = np.maximum(np.log(readers) - np.log1p(frequency), 0.01).astype(np.float32)
        total = float(ratings.data[kept].sum())
        self.average_length = total / readers if total > 0 else 1.0

    # -- fitting -----------------------------------------------------------------------------
    def _new_model(self, num_threads: int = 0, iterations: int | None = None) -> Any:
        cfg = self.config
        return AlternatingLeastSquares(
            num_threads=num_threads,
            factors=cfg.factors,
            regularization=cfg.regularization,
            alpha=1.0,  # confidences are scaled here, so implicit makes no scaled copy
            dtype=np.float32,
            iterations=iterations or cfg.iterations,
            random_state=cfg.seed,
        )

    def fit(self, interactions: Interactions, catalog: Catalog) -> AlsRecommender:
        """Factorise the readers x catalog matrix of confidences."""
        return self._factorise(interactions, catalog, start=None)

    def refit(self, interactions: Interactions, catalog: Catalog) -> AlsRecommender:
        """Fit on `interactions`, starting from this fit's factors.

        Training refits on every rating after the gate's fit on all but a small held-out
        part of them, so this fit's factors are already close to the answer:
        `REFIT_ITERATIONS` alternations converge again where a fit from noise needs the
        configured `iterations`. Readers this fit did not see start from small random
        factors, as in a fresh fit; a different catalog or no earlier fit is a fresh fit.
        """
        if (
            self.user_factors is None
            or self.user_ids is None
            or self.catalog is None
            or not np.array_equal(self.catalog.items.ids, catalog.items.ids)
            or self.config.iterations <= REFIT_ITERATIONS
        ):
            return self.fit(interactions, catalog)
        random = np.random.default_rng(self.config.seed)
        users = random.random((len(interactions.users), self.config.factors), dtype=np.float32)
        users *= 0.01
        seen = IdMap(self.user_ids).index(interactions.users.ids)  # both sorted dataset ids
        known = seen >= 0
        users[known] = self.user_factors[seen[known]]
        return self._factorise(interactions, catalog, start=(users, self.item_factors))

    def _factorise(
        self,
        interactions: Interactions,
        catalog: Catalog,
        start: tuple[np.ndarray, np.ndarray] | None,
    ) -> AlsRecommender:
        n_items = len(catalog.items)
        if np.array_equal(interactions.items.ids, catalog.items.ids):
            item_index = interactions.item_index
        else:
            item_index = catalog.items.index(interactions.items.ids[interactions.item_index])
            if (item_index < 0).any():
                raise ValueError("interactions name books outside the catalog")
        ratings = sp.csr_matrix(
            (interactions.rating, (interactions.user_index, item_index)),
            shape=(len(interactions.users), n_items),
            dtype=np.float32,
        )
        if self.config.weighting == "bm25":
            self._fit_bm25(ratings)
        user_items = self.confidence(ratings)
        with _single_threaded_blas():
            model = self._new_model(iterations=None if start is None else REFIT_ITERATIONS)
            if start is not None:  # implicit's fit starts from factors already set
                model.user_factors = np.array(start[0], dtype=np.float32, order="C")
                model.item_factors = np.array(start[1], dtype=np.float32, order="C")
            model.fit(user_items, show_progress=False)
        self._install(model, np.asarray(model.item_factors), catalog)
        self.user_factors = np.asarray(model.user_factors)
        self.user_ids = interactions.users.ids
        return self

    def install_factors(
        self,
        item_factors: np.ndarray,
        catalog: Catalog,
        *,
        idf: np.ndarray | None = None,
        average_length: float = 1.0,
    ) -> AlsRecommender:
        """Take item factors fitted elsewhere (Spark), aligned with `catalog`'s items; `idf`
        and `average_length` are the BM25 statistics of that fit (bm25 weighting only)."""
        if item_factors.shape != (len(catalog.items), self.config.factors):
            raise ValueError(
                f"item factors of shape {item_factors.shape} do not fit "
                f"{len(catalog.items)} books x {self.config.factors} factors"
            )
        self.idf = np.zeros(0, dtype=np.float32) if idf is None else idf.astype(np.float32)
        self.average_length = average_length
        factors = np.array(item_factors, dtype=np.float32, order="C")
        with _single_threaded_blas():
            model = self._new_model()
        model.item_factors = factors
        self._install(model, factors, catalog)
        self.user_factors = self.user_ids = None
        return self

    def _install(self, model: Any, item_factors: np.ndarray, catalog: Catalog) -> None:
        self._model = model
        # small batches solve on one thread: waking (and leaving spinning) an OpenMP pool
        # costs more than a handful of 64 x 64 Cholesky solves
        with _single_threaded_blas():
            self._model_single = self._new_model(num_threads=1)
        self._model_single.item_factors = item_factors
        self.item_factors = item_factors
        norms = np.linalg.norm(item_factors, axis=1, keepdims=True)
        self._unit_items = (item_factors / np.where(norms > 0, norms, 1)).astype(np.float32)
        # Y'Y + lambda I, the fold-in's shared part of every reader's system
        self._regularized_gram = item_factors.T @ item_factors
        self._regularized_gram[np.diag_indices_from(self._regularized_gram)] += (
            self.config.regularization
        )
        self.catalog = catalog

    # -- scoring -----------------------------------------------------------------------------
    def user_vectors(self, histories: sp.csr_matrix) -> np.ndarray:
        """Fold-in: the least-squares user factors of each history row (n x factors)."""
        self.require_catalog()
        user_items = self.confidence(sp.csr_matrix(histories, dtype=np.float32, copy=True))
        if user_items.shape[0] == 0:
            return np.zeros((0, self.config.factors), dtype=np.float32)
        n = user_items.shape[0]
        if n >= CG_ROWS:
            return self._fold_in_many(user_items)
        solver = self._model if n >= PARALLEL_ROWS else self._model_single
        with _single_threaded_blas():
            vectors = solver.recalculate_user(np.arange(n), user_items)
        return np.asarray(vectors, dtype=np.float32)

    def _fold_in_many(self, confidences: sp.csr_matrix) -> np.ndarray:
        """`user_vectors` for many rows: FOLD_IN_CG_STEPS conjugate-gradient steps from zero
        (each costs about what building one row's system costs a Cholesky solve), then the
        rows still off by more than FOLD_IN_TOLERANCE of their right-hand side solved exactly."""
        items = self.item_factors
        vectors = np.zeros((confidences.shape[0], self.config.factors), dtype=np.float32)
        with _single_threaded_blas():
            native.least_squares_cg(
                confidences,
                vectors,
                items,
                self.config.regularization,
                num_threads=0,
                cg_steps=FOLD_IN_CG_STEPS,
            )
        rough = np.flatnonzero(self._relative_residuals(confidences, vectors) > FOLD_IN_TOLERANCE)
        if len(rough):
            with _single_threaded_blas():
                exact = self._model.recalculate_user(np.arange(len(rough)), confidences[rough])
            vectors[rough] = exact
        return vectors

    def _relative_residuals(self, confidences: sp.csr_matrix, vectors: np.ndarray) -> np.ndarray:
        """|b_u - A_u x_u| / |b_u| per row, for A_u = Y'Y + Y'(C_u - I)Y + lambda I and
        b_u = Y'C_u p_u (every confidence here is positive, so p_u is 1 where c_u is set)."""
        items = self.item_factors
        rows = np.repeat(np.arange(confidences.shape[0]), np.diff(confidences.indptr))
        # y_i . x_u for every rating, 64k ratings at a time (a gather of their factor rows)
        predicted = np.empty(len(rows), dtype=np.float32)
        for start in range(0, len(rows), 65536):
            part = slice(start, start + 65536)
            predicted[part] = np.einsum(
                "ij,ij->i", items[confidences.indices[part]], vectors[rows[part]]
            )
        data = confidences.data
        weighted = sp.csr_matrix(
            (data - (data - 1) * predicted, confidences.indices, confidences.indptr),
            shape=confidences.shape,
        )
        residual = np.asarray(weighted @ items) - vectors @ self._regularized_gram
        target = np.linalg.norm(np.asarray(confidences @ items), axis=1)
        relative: np.ndarray = np.linalg.norm(residual, axis=1) / np.maximum(
            target, np.finfo(np.float32).tiny
        )
        return relative

    def scores(self, histories: sp.csr_matrix) -> np.ndarray:
        """x_u . y_i for every history row and item; an empty history scores all items 0."""
        return np.asarray(self.user_vectors(histories) @ self.item_factors.T, dtype=np.float32)

    def item_scores(self, item_index: int) -> np.ndarray:
        """Cosine of item factors."""
        self.require_catalog()
        return np.asarray(self._unit_items @ self._unit_items[item_index], dtype=np.float32)

    def explain(self, history: ReaderHistory, book_id: int) -> list[str]:
        """Up to 3 history books whose factors are closest to the book's, by cosine x weight."""
        return self.explain_many(history, [book_id])[0]

    def explain_many(self, history: ReaderHistory, book_ids: Sequence[int]) -> list[list[str]]:
        """`explain` for a whole list: the history's confidences once, one product of unit
        factors (history books x listed books)."""
        catalog = self.require_catalog()
        targets = catalog.items.index(np.asarray(book_ids, dtype=np.int64))
        if not len(history) or not len(targets):
            return [[] for _ in book_ids]
        row = self.confidence(self.history_row(history))
        items, weights = row.indices, row.data
        positions = catalog.items.index(history.book_ids).tolist()
        rated = dict(zip(positions, np.asarray(history.ratings).tolist(), strict=True))
        ratings = np.asarray([rated[int(item)] for item in items], dtype=np.float64)
        known = np.flatnonzero(targets >= 0)
        # contributions[j, t] = cos(y_j, y_t) x c_j for history book j and listed book t
        contributions = (self._unit_items[items] @ self._unit_items[targets[known]].T).astype(
            np.float64
        ) * weights[:, None]
        column = np.cumsum(targets >= 0) - 1
        return [
            because(catalog, items, ratings, contributions[:, column[i]], int(target))
            if target >= 0
            else []
            for i, target in enumerate(targets)
        ]

    # -- persistence -------------------------------------------------------------------------
    def save(self, directory: Path) -> dict[str, Any]:
        catalog = self.require_catalog()
        manifest = {
            "algo": self.algo,
            "params": self.config.model_dump(),
            "average_length": self.average_length,
        }
        arrays = {"item_factors": self.item_factors, "idf": self.idf, **catalog.to_arrays()}
        return write_artifact(directory, manifest, arrays)

    @classmethod
    def load(cls, directory: Path) -> AlsRecommender:
        manifest, arrays = read_artifact(directory)
        model = cls(AlsConfig(**manifest["params"]))
        model.idf = np.asarray(arrays["idf"])
        model.average_length = float(manifest["average_length"])
        # implicit's native solver needs writable, contiguous factors: copy out of the mmap
        item_factors = np.array(arrays["item_factors"], dtype=np.float32, order="C")
        with _single_threaded_blas():
            als = model._new_model()
        als.item_factors = item_factors
        model._install(als, item_factors, Catalog.from_arrays(arrays))
        return model
