"""EASE: an item-item linear model with a closed-form solution (Steck, WWW 2019).

X is the readers x items matrix (1 per rating, or the rating itself). EASE learns the item-item
weights B that reconstruct X from itself, with an L2 penalty λ and diag(B) = 0 so no item may
predict itself:

    min_B ‖X − XB‖²_F + λ‖B‖²_F   subject to diag(B) = 0

whose solution is, with G = XᵀX + λI and P = G⁻¹,

    B_ij = −P_ij / P_jj   (i ≠ j),   B_jj = 0.

A reader's scores are x @ B: item j gets Σ_i x_i B_ij, the weight each book in the history
gives it. G is symmetric positive definite, so P comes from a Cholesky factorisation (LAPACK
potrf) and its inverse (potri), about n³ flops in float32, all done in place in one dense
n x n array: G, then P, then B. A 10k-item catalogue needs one 400 MB array.

Top-N lists are judged on the books a reader liked, so by default B learns to predict only
those (`targets="liked"`: Y holds the ratings ≥ `liked_rating`) from every rating (the
inputs X), the asymmetric form of the same problem:

    min_B ‖Y − XB‖²_F + λ‖B‖²_F   subject to diag(B) = 0
    B = C − P diag(γ),   C = P XᵀY,   γ_j = C_jj / P_jj

With Y = X this is the formula above (C = I − λP). It costs one more n x n product
(P @ XᵀY, by column blocks, about 2n³ flops) and a second n x n array while it runs
(800 MB for 10k books).

A rating below the liked one says less about a reader's taste than a liked one, so with binary
weighting it counts `unliked_weight` (0.5 by default) in X instead of 1; Y is unchanged.
On validation splits of movielens-small (five) and of the synthetic goodbooks-scale demo data
this lifted NDCG@10 by 1.5–5 % over counting every rating alike (docs/benchmarks.md).

The helpers at the end (the interaction matrix in catalog space and history weighting) are
shared with item-kNN.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field
from scipy.linalg import lapack

from bookrec.recsys.artifacts import ArtifactError, read_artifact, write_artifact
from bookrec.recsys.base import ScoringRecommender, because
from bookrec.recsys.data import Catalog, Interactions, ReaderHistory
from bookrec.recsys.parallel import for_row_blocks, worker_count

Weighting = Literal["binary", "rating"]

GRAM_BLOCK = 512  # gram / similarity rows computed per sparse product
# rows of YᵀX per sparse product: nearly dense, so scipy's sparse result (8 bytes a value,
# allocated for the upper bound first) is what a thread holds; smaller keeps the peak down
CROSS_BLOCK = 256
SYMMETRIZE_BLOCK = 1024  # rows copied per step when mirroring a triangle
COLUMN_TILE = 128  # dense columns per step of a many-row sparse x dense product


class EaseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    l2: float = Field(500.0, gt=0, description="λ, the L2 penalty on the item weights")
    weighting: Weighting = Field(
        "binary", description="X holds 1 per kept rating, or the rating itself"
    )
    min_rating: float = Field(
        0.0, description="ratings below this are dropped before fitting and from histories"
    )
    targets: Literal["liked", "all"] = Field(
        "liked",
        description="what B learns to predict from every kept rating: the liked ones"
        " (rating >= liked_rating, what top-N metrics count) or all of them (Steck's EASE)",
    )
    liked_rating: float = Field(4.0, description="the lowest rating that counts as liked")
    unliked_weight: float = Field(
        0.5,
        gt=0,
        le=1,
        description="binary weighting: how much a kept rating below liked_rating counts as an"
        " input (1 = every rating alike); used only when the data has liked and other ratings",
    )
    precision: Literal["int8", "float32"] = Field(
        "int8",
        description="how B is kept and stored: int8 with one scale per row takes a quarter of"
        " the memory (100 MB for 10k books) at no measurable cost in ranking quality",
    )


class EaseRecommender(ScoringRecommender):
    """Item-item weights B from EASE's closed form; scores = history @ B."""

    algo: ClassVar[str] = "ease"
    config_class: ClassVar[type[EaseConfig]] = EaseConfig

    def __init__(self, config: EaseConfig | None = None) -> None:
        self.config = config or EaseConfig()
        self.catalog: Catalog | None = None
        self.weights: np.ndarray = np.zeros((0, 0), dtype=np.float32)  # B, items x items
        self.row_scale: np.ndarray | None = None  # int8 B: B[i] ≈ weights[i] * row_scale[i]
        self.counts: dict[str, int] = {}
        # the input weight of a rating below liked_rating, as fitted (1: no down-weighting)
        self.unliked_weight = 1.0

    def fit(self, interactions: Interactions, catalog: Catalog) -> EaseRecommender:
        matrix, targets = self._training_matrices(interactions, catalog)
        # a refit's old weights (100 MB at 10k books) are not kept while the new ones form
        self.weights, self.row_scale = np.zeros((0, 0), dtype=np.float32), None
        self.weights = ease_weights(matrix, self.config.l2, targets)
        if self.config.precision == "int8":
            # fitted and loaded models must score alike: quantise once, here
            self.weights, self.row_scale = quantise_rows(self.weights)
        self.catalog = catalog
        return self

    def _training_matrices(
        self, interactions: Interactions, catalog: Catalog
    ) -> tuple[sp.csr_matrix, sp.csr_matrix | None]:
        """The inputs X (weighted as configured) and the targets Y (None: Y = X); sets
        `counts` and the `unliked_weight` used."""
        matrix = interaction_matrix(
            interactions, catalog, self.config.weighting, self.config.min_rating
        )
        self.counts = matrix_counts(matrix)
        weighs_unliked = self.config.weighting == "binary" and self.config.unliked_weight != 1.0
        liked = (
            self._liked(interactions, catalog)
            if self.config.targets == "liked" or weighs_unliked
            else None
        )
        targets = liked if self.config.targets == "liked" else None
        self.unliked_weight = 1.0
        if weighs_unliked and liked is not None and liked.nnz < matrix.nnz:
            # liked ⊂ matrix (both binary): w·X + (1 − w)·liked gives 1 to a liked rating
            self.unliked_weight = self.config.unliked_weight
            matrix = sp.csr_matrix(
                matrix * np.float32(self.unliked_weight)
                + liked * np.float32(1.0 - self.unliked_weight)
            )
        return matrix, targets

    def _weighted(self, histories: sp.csr_matrix) -> sp.csr_matrix:
        """History rows weighted like the training data (a copy)."""
        return weigh(
            histories, self.config.weighting, self.config.min_rating, unliked=self._unliked
        )

    def _liked(self, interactions: Interactions, catalog: Catalog) -> sp.csr_matrix | None:
        """The liked ratings (binary; the targets Y with `targets="liked"`), or None when none
        is liked: data with no rating at or above `liked_rating`, such as one value per read."""
        liked_from = max(self.config.liked_rating, self.config.min_rating)
        liked = interaction_matrix(interactions, catalog, "binary", liked_from)
        self.counts["n_liked"] = int(liked.nnz)
        return liked if liked.nnz else None

    @property
    def _unliked(self) -> tuple[float, float] | None:
        """(liked_rating, weight) for the history helpers, or None when every rating counts 1."""
        if self.unliked_weight == 1.0:
            return None
        return max(self.config.liked_rating, self.config.min_rating), self.unliked_weight

    def scores(self, histories: sp.csr_matrix) -> np.ndarray:
        """x @ B for each history row (weighted like the training data)."""
        self.require_catalog()
        weighted = self._weighted(histories)
        if self.row_scale is not None:  # weigh made a copy: scaled in place, column by column
            weighted.data *= self.row_scale[weighted.indices]
        return sparse_dense_product(weighted, self.weights)

    def item_scores(self, item_index: int) -> np.ndarray:
        """(B[i, :] + B[:, i]) / 2: what i recommends and what recommends i, averaged.

        Both share the sign of −P_ij and differ only in scale (1 / P_jj vs 1 / P_ii).
        """
        self.require_catalog()
        row = np.asarray(self.weights[item_index, :], dtype=np.float32)
        column = np.asarray(self.weights[:, item_index], dtype=np.float32)
        if self.row_scale is not None:
            row *= self.row_scale[item_index]
            column *= self.row_scale
        return np.asarray((row + column) / 2, dtype=np.float32)

    def explain(self, history: ReaderHistory, book_id: int) -> list[str]:
        """The (up to) three history books adding most to the book's score, x_j · B[j, book]."""
        return self.explain_many(history, [book_id])[0]

    def explain_many(self, history: ReaderHistory, book_ids: Sequence[int]) -> list[list[str]]:
        """`explain` for several books: the history's weights once, one gather of B."""
        catalog = self.require_catalog()
        targets = catalog.items.index(np.asarray(book_ids, dtype=np.int64))
        known = targets[targets >= 0]
        index, ratings, weights = history_weights(
            catalog, history, self.config.weighting, self.config.min_rating, unliked=self._unliked
        )
        # contributions[j, t] = x_j · B[j, t] for history book j and target t
        contributions = weights[:, None] * np.asarray(
            self.weights[np.ix_(index, known)], dtype=np.float64
        )
        if self.row_scale is not None:
            contributions *= self.row_scale[index, None]
        column = np.cumsum(targets >= 0) - 1  # each known target's column in `contributions`
        return [
            because(catalog, index, ratings, contributions[:, column[i]], int(target))
            if target >= 0
            else []
            for i, target in enumerate(targets)
        ]

    def save(self, directory: Path) -> dict[str, Any]:
        catalog = self.require_catalog()
        manifest = {
            "algo": self.algo,
            "params": self.config.model_dump(),
            "unliked_weight_used": self.unliked_weight,
            **self.counts,
        }
        arrays = {"weights": self.weights, **catalog.to_arrays()}
        if self.row_scale is not None:
            arrays["row_scale"] = self.row_scale
        return write_artifact(directory, manifest, arrays)

    @classmethod
    def load(cls, directory: Path) -> EaseRecommender:
        manifest, arrays = read_artifact(directory)
        # versions saved before a param existed were fitted as it was then
        model = cls(EaseConfig(**{"targets": "all", "unliked_weight": 1.0, **manifest["params"]}))
        model.unliked_weight = float(manifest.get("unliked_weight_used", 1.0))
        model.weights = arrays["weights"]
        model.row_scale = np.asarray(arrays["row_scale"]) if "row_scale" in arrays else None
        if model.weights.dtype == np.int8 and model.row_scale is None:
            raise ArtifactError(f"{directory}: int8 weights without their row_scale")
        model.counts = {
            key: int(manifest[key])
            for key in ("n_users", "n_items", "n_interactions", "n_liked")
            if key in manifest
        }
        model.catalog = Catalog.from_arrays(arrays)
        return model


class ValidationScores:
    """EASE's scores for a few readers (a validation sample) at any λ, without forming B.

    Choosing λ needs only the validation readers' scores, H·B for their m weighted histories
    H (m ≪ n). With targets Y, H·B = (H·P)·XᵀY − (H·P)·diag(γ), γ_j = (P·XᵀY)_jj / P_jj, the
    diagonal read as a row-wise dot product: the fit's n x n product P·XᵀY (2n³, a third of
    a fit) becomes one of 2mn², and neither B nor a whole XᵀY is held beside P (XᵀY is formed
    a chunk of columns at a time, as in a fit). With Y = X, H·B = H − (H·P)·diag(1/P_jj).
    Unlike a fitted model's, B is not quantised here.
    """

    def __init__(
        self,
        config: EaseConfig,
        interactions: Interactions,
        catalog: Catalog,
        histories: sp.csr_matrix,
    ) -> None:
        model = EaseRecommender(config)
        matrix, targets = model._training_matrices(interactions, catalog)
        self.matrix = sp.csr_matrix(matrix, dtype=np.float32)
        self.targets_by_item = (
            None if targets is None else sp.csr_matrix(targets.T, dtype=np.float32)
        )
        #: the input weight of a rating below the liked one, as fitted
        self.unliked_weight = model.unliked_weight
        self.histories = model._weighted(histories)

    def scores(self, l2: float) -> np.ndarray:
        """The histories' scores (m x n float32) of EASE fitted with λ = `l2`."""
        inverse = inverse_gram(self.matrix, l2)
        projected = sparse_dense_product(self.histories, inverse)  # H·P
        diagonal = np.diagonal(inverse).copy()
        if self.targets_by_item is None:
            del inverse
            projected /= -diagonal[np.newaxis, :]
            return np.asarray(projected + self.histories.toarray(), dtype=np.float32)
        scores = np.empty_like(projected)
        gamma = np.empty_like(diagonal)
        for first, last, part in _cross_chunks(self.matrix, self.targets_by_item):
            gamma[first:last] = np.einsum("ij,ij->i", inverse[first:last], part)  # (P·XᵀY)_jj
            np.matmul(projected, part.T, out=scores[:, first:last])
        del inverse
        gamma /= diagonal
        projected *= gamma[np.newaxis, :]
        scores -= projected
        return scores


def sparse_dense_product(rows: sp.csr_matrix, dense: np.ndarray) -> np.ndarray:
    """rows @ dense as float32, for a dense matrix of float32 or another type (int8).

    A few rows (requests) read only the dense rows their nonzeros name. Many rows (batches,
    evaluation) go a tile of COLUMN_TILE dense columns at a time, converted to float32 once:
    scipy adds a dense row per nonzero, and a tile's short rows stay in cache for every row's
    nonzeros, where whole rows of a 10k-book B (40 KB each) came from memory each time
    (2,048 readers of the demo data on two threads: 1.9 s -> 0.7 s).
    """
    rows = sp.csr_matrix(rows, dtype=np.float32)
    if rows.shape[0] <= 64:
        if dense.dtype == np.float32:
            return np.asarray(rows @ dense, dtype=np.float32)
        return _few_rows_product(rows, dense)
    out = np.empty((rows.shape[0], dense.shape[1]), dtype=np.float32)
    for start in range(0, dense.shape[1], COLUMN_TILE):
        tile = np.asarray(dense[:, start : start + COLUMN_TILE], dtype=np.float32)
        out[:, start : start + COLUMN_TILE] = rows @ tile
    return out


#: dense rows gathered and converted at a time by `_few_rows_product`
GATHER_ROWS = 32
_scratch = threading.local()


def _few_rows_product(rows: sp.csr_matrix, dense: np.ndarray) -> np.ndarray:
    """rows @ dense for a request's few rows: only the dense rows their nonzeros name, GATHER_ROWS
    at a time, gathered and converted into this thread's reused buffers.

    Fresh arrays of that size (a history of 100 books is 4 MB as float32) are memory the
    allocator maps and unmaps on every request, and the kernel faults in page by page: that
    was ~800 page faults and ~2 ms of system time per scored request.
    """
    used = np.unique(rows.indices)
    width = dense.shape[1]
    buffers = getattr(_scratch, "buffers", None)
    if buffers is None or buffers[0].shape[1] != width or buffers[0].dtype != dense.dtype:
        buffers = (
            np.empty((GATHER_ROWS, width), dtype=dense.dtype),
            np.empty((GATHER_ROWS, width), dtype=np.float32),
        )
        _scratch.buffers = buffers
    gathered, converted = buffers
    out = np.zeros((rows.shape[0], width), dtype=np.float32)
    # the rows' weights over the used dense rows, as a small dense matrix: each block is then
    # one BLAS product (scipy's sparse product costs more to dispatch than to compute here)
    weights = np.zeros((rows.shape[0], len(used)), dtype=np.float32)
    row_of = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
    np.add.at(weights, (row_of, np.searchsorted(used, rows.indices)), rows.data)
    for start in range(0, len(used), GATHER_ROWS):
        block = used[start : start + GATHER_ROWS]
        np.take(dense, block, axis=0, out=gathered[: len(block)])
        np.copyto(converted[: len(block)], gathered[: len(block)], casting="unsafe")
        out += weights[:, start : start + len(block)] @ converted[: len(block)]
    return out


def quantise_rows(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows and a float32 scale per row with weights[i] ≈ q[i] * scale[i]."""
    scale = np.empty(len(weights), dtype=weights.dtype)
    quantised = np.empty(weights.shape, dtype=np.int8)
    for start in range(0, len(weights), SYMMETRIZE_BLOCK):  # no full-size float temporaries
        stop = start + SYMMETRIZE_BLOCK
        block, block_scale = weights[start:stop], scale[start:stop]
        block_scale[:] = np.maximum(block.max(axis=1), -block.min(axis=1)) / 127
        block_scale[~(block_scale > 0)] = 1.0
        quantised[start:stop] = np.rint(block / block_scale[:, None])
    return quantised, scale.astype(np.float32)


# -- the closed form -----------------------------------------------------------------------------


def ease_weights(
    matrix: sp.csr_matrix, l2: float, targets: sp.csr_matrix | None = None
) -> np.ndarray:
    """B = −P / diag(P) with diag(B) = 0, P = (XᵀX + λI)⁻¹; one dense float32 n x n array.

    With `targets` Y (readers x items like X), B fits Y from X instead (module docstring).
    """
    weights = inverse_gram(matrix, l2)
    n = weights.shape[0]
    if n == 0:
        return weights
    if targets is not None:
        return _weights_for_targets(weights, matrix, targets)
    diagonal = np.diagonal(weights).copy()
    np.divide(weights, -diagonal[np.newaxis, :], out=weights)  # B_ij = −P_ij / P_jj
    weights[np.diag_indices(n)] = 0.0
    return weights


def inverse_gram(matrix: sp.csr_matrix, l2: float) -> np.ndarray:
    """P = (XᵀX + λI)⁻¹ as a dense float32 C-ordered array, formed in the Gram matrix's memory."""
    gram = gram_matrix(matrix, lower_only=True)  # potrf on gram.T reads this triangle only
    n = gram.shape[0]
    if n == 0:
        return gram
    gram[np.diag_indices(n)] += np.float32(l2)
    # LAPACK is column-major: gram.T is a Fortran-ordered view whose upper triangle is gram's
    # lower one, so potrf / potri (lower=0) work in place on gram's memory, no copy.
    factor, info = lapack.spotrf(gram.T, lower=0, clean=0, overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky factorisation failed (potrf info {info})")
    inverse, info = lapack.spotri(factor, lower=0, overwrite_c=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"inverting the Cholesky factor failed (potri info {info})")
    del factor
    symmetrize_upper(inverse)  # potri fills one triangle only
    del gram  # inverse holds gram's memory when LAPACK worked in place
    return np.ascontiguousarray(inverse.T)  # a view, no copy: inverse is F-order


def _weights_for_targets(
    inverse: np.ndarray, matrix: sp.csr_matrix, targets: sp.csr_matrix
) -> np.ndarray:
    """B = C − P diag(C_jj / P_jj) with C = P XᵀY, written column block by column block.

    XᵀY's columns are formed a chunk at a time (`_cross_chunks`), then multiplied by P (BLAS,
    every core).
    """
    n = inverse.shape[0]
    weights = np.empty((n, n), dtype=np.float32)
    targets_by_item = sp.csr_matrix(targets.T, dtype=np.float32)
    for first, last, part in _cross_chunks(
        sp.csr_matrix(matrix, dtype=np.float32), targets_by_item
    ):
        np.matmul(inverse, part.T, out=weights[:, first:last])
    columns = np.arange(n)
    gamma = weights[columns, columns] / inverse[columns, columns]
    for start in range(0, n, SYMMETRIZE_BLOCK):  # no full-size float temporaries
        stop = start + SYMMETRIZE_BLOCK
        weights[start:stop] -= inverse[start:stop] * gamma[np.newaxis, :]
    weights[columns, columns] = 0.0
    return weights


def _cross_chunks(
    matrix: sp.csr_matrix, targets_by_item: sp.csr_matrix
) -> Iterator[tuple[int, int, np.ndarray]]:
    """(first, last, rows first:last of YᵀX = columns of XᵀY), CROSS_BLOCK rows per thread at
    a time; the chunk's buffer is reused, so each is valid until the next.

    scipy's sparse product runs on one core, so a chunk's blocks are formed on the row-block
    threads at once. They are formed as rows of YᵀX, which scipy writes straight into a
    C-ordered buffer (columns of XᵀY into a Fortran one went through a CSC copy of each nearly
    dense block: 160 MB more at the training's peak).
    """
    n = matrix.shape[1]
    chunk = CROSS_BLOCK * worker_count()
    cross = np.empty((min(chunk, n), n), dtype=np.float32)
    for first in range(0, n, chunk):
        last = min(first + chunk, n)
        part = cross[: last - first]

        def fill(start: int, stop: int, first: int = first, part: np.ndarray = part) -> None:
            product = targets_by_item[first + start : first + stop] @ matrix
            sp.csr_matrix(product).toarray(out=part[start:stop])

        for_row_blocks(last - first, CROSS_BLOCK, fill)
        yield first, last, part


def gram_matrix(matrix: sp.csr_matrix, lower_only: bool = False) -> np.ndarray:
    """XᵀX as a dense float32 array, built from sparse row blocks straight into place.

    With `lower_only` just the lower triangle (row >= column) is computed, half the work; the
    rest of the array is left uninitialised.
    """
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    transposed = sp.csr_matrix(matrix.T)
    n = matrix.shape[1]
    gram = np.empty((n, n), dtype=np.float32)

    def fill(start: int, stop: int) -> None:
        if lower_only:
            gram[start:stop, :stop] = (transposed[start:stop] @ matrix[:, :stop]).toarray()
        else:
            sp.csr_matrix(transposed[start:stop] @ matrix).toarray(out=gram[start:stop])

    for_row_blocks(n, GRAM_BLOCK, fill)
    return gram


def symmetrize_upper(array: np.ndarray) -> None:
    """Copy the upper triangle (i <= j) onto the lower one, in place, a block of rows at a time."""
    n = array.shape[0]
    for start in range(0, n, SYMMETRIZE_BLOCK):
        stop = min(start + SYMMETRIZE_BLOCK, n)
        array[stop:, start:stop] = array[start:stop, stop:].T
        block = array[start:stop, start:stop]
        lower = np.tril_indices(stop - start, -1)
        block[lower] = block.T[lower]


# -- shared with item-kNN ------------------------------------------------------------------------


def matrix_counts(matrix: sp.csr_matrix) -> dict[str, int]:
    """What a model was fitted on, for its manifest."""
    return {
        "n_users": int(matrix.shape[0]),
        "n_items": int(matrix.shape[1]),
        "n_interactions": int(matrix.nnz),
    }


def interaction_matrix(
    interactions: Interactions, catalog: Catalog, weighting: Weighting, min_rating: float
) -> sp.csr_matrix:
    """Readers x catalog items CSR (float32): 1 or the rating per kept interaction.

    Interactions are mapped into the catalog's item space; books outside it and ratings below
    `min_rating` are dropped. A reader who rated a book twice counts once (binary) or with
    the mean of the ratings.
    """
    items = catalog.items.index(interactions.items.ids[interactions.item_index])
    keep = (items >= 0) & (interactions.rating >= min_rating)
    ratings = np.asarray(interactions.rating[keep], dtype=np.float32)
    values = np.ones(len(ratings), dtype=np.float32) if weighting == "binary" else ratings
    shape = (len(interactions.users), len(catalog.items))
    coordinates = (interactions.user_index[keep], items[keep])
    matrix = sp.csr_matrix((values, coordinates), shape=shape, dtype=np.float32)
    matrix.sum_duplicates()
    if matrix.nnz < len(values):  # duplicates were summed: undo it
        if weighting == "binary":
            matrix.data[:] = 1.0
        else:
            counts = sp.csr_matrix(
                (np.ones(len(values), dtype=np.float32), coordinates),
                shape=shape,
                dtype=np.float32,
            )
            counts.sum_duplicates()
            matrix.data /= counts.data
    return matrix


def weigh(
    histories: sp.spmatrix,
    weighting: Weighting,
    min_rating: float,
    unliked: tuple[float, float] | None = None,
) -> sp.csr_matrix:
    """History rows of ratings, weighted like the training data (a copy).

    `unliked` = (liked_rating, w): with binary weighting a kept rating below liked_rating
    counts w instead of 1 (EASE's `unliked_weight`).
    """
    matrix = sp.csr_matrix(histories, dtype=np.float32, copy=True)
    keep = matrix.data >= min_rating
    if weighting == "binary":
        matrix.data = _binary_weights(matrix.data, keep, unliked).astype(np.float32)
    else:
        matrix.data = np.where(keep, matrix.data, 0).astype(np.float32)
    matrix.eliminate_zeros()
    return matrix


def _binary_weights(
    ratings: np.ndarray, keep: np.ndarray, unliked: tuple[float, float] | None
) -> np.ndarray:
    """1 per kept rating (w for one below the liked rating, with `unliked` = (liked, w))."""
    if unliked is None:
        return keep.astype(np.float64)
    liked_rating, weight = unliked
    return np.where(keep, np.where(ratings >= liked_rating, 1.0, weight), 0.0)


def history_weights(
    catalog: Catalog,
    history: ReaderHistory,
    weighting: Weighting,
    min_rating: float,
    unliked: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Catalog indices, ratings and weights of a history's known books (last rating wins);
    weights as `weigh` gives them."""
    index = catalog.items.index(history.book_ids)
    ratings = np.asarray(history.ratings, dtype=np.float64)
    # keep each book's last occurrence, in catalog order
    reversed_index = index[::-1]
    unique, first = np.unique(reversed_index, return_index=True)
    position = len(index) - 1 - first
    known = unique >= 0
    index, ratings = unique[known], ratings[position[known]]
    keep = ratings >= min_rating
    if weighting == "binary":
        weights = _binary_weights(ratings, keep, unliked)
    else:
        weights = np.where(keep, ratings, 0.0)
    return index, ratings, weights
