"""Top-k selection: the batch form (`top_k_rows`, every precomputed list and evaluation) picks
exactly what the one-row form (`top_k`, every live list) picks, ties and short rows included,
also on rows wide enough that it narrows them to candidates first."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bookrec.recsys.base import TOP_K_SAMPLE_STRIDE, top_k, top_k_rows

# few distinct values, so that ties at the cut are common; -inf marks items a row may not show
SCORES = st.sampled_from([-np.inf, 0.0, 0.5, 1.0, 2.0])


@settings(max_examples=300, deadline=None)
@given(
    scores=st.integers(1, 6).flatmap(
        lambda rows: st.integers(1, 12).flatmap(
            lambda width: arrays(np.float32, (rows, width), elements=SCORES)
        )
    ),
    k=st.integers(1, 14),
)
def test_rows_pick_what_one_row_picks(scores: np.ndarray, k: int) -> None:
    _check_against_one_row(scores, k)


@settings(max_examples=200, deadline=None)
@given(
    scores=st.integers(1, 6).flatmap(
        lambda rows: st.integers(4 * TOP_K_SAMPLE_STRIDE, 300).flatmap(
            lambda width: arrays(
                np.float32,
                (rows, width),
                elements=st.one_of(SCORES, st.floats(-3, 3, width=32), st.just(np.float32(np.nan))),
            )
        )
    ),
    k=st.integers(1, 9),
)
def test_wide_rows_pick_what_one_row_picks(scores: np.ndarray, k: int) -> None:
    """Wide rows go through candidates (the k-th best of a sample of columns): rows of equal
    scores, of -inf and NaN, with fewer finite scores than k, and with ties at the cut."""
    _check_against_one_row(scores, k)


def test_wide_rows_of_one_score_and_mostly_excluded_rows() -> None:
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((5, 2000)).astype(np.float32)
    scores[0] = 0.0  # every book tied: ranked whole, lowest indices first
    scores[1, :-30] = -np.inf  # fewer finite scores than k
    scores[2, ::TOP_K_SAMPLE_STRIDE] = -np.inf  # the sample sees nothing finite
    scores[3, 1::TOP_K_SAMPLE_STRIDE] = 10.0  # the best books all outside the sample
    _check_against_one_row(scores, 50)


def _check_against_one_row(scores: np.ndarray, k: int) -> None:
    picked, values = top_k_rows(scores, k)

    width = min(k, scores.shape[1])
    assert picked.shape == values.shape == (len(scores), width)
    for row, row_scores in enumerate(scores):
        expected = top_k(row_scores, width)
        found = len(expected)
        np.testing.assert_array_equal(picked[row, :found], expected)
        np.testing.assert_array_equal(values[row, :found], row_scores[expected])
        assert (picked[row, found:] == -1).all()
        assert (values[row, found:] == -np.inf).all()


def test_ties_at_the_cut_go_to_the_lower_index() -> None:
    scores = np.array([[1.0, 3.0, 1.0, 1.0, 2.0], [5.0, 4.0, 4.0, 4.0, 4.0]], dtype=np.float32)
    picked, values = top_k_rows(scores, 3)
    assert picked.tolist() == [[1, 4, 0], [0, 1, 2]]
    assert values.tolist() == [[3.0, 2.0, 1.0], [5.0, 4.0, 4.0]]
