"""The reasons of a similar-books list: what two books have in common on record."""

from __future__ import annotations

import numpy as np

from bookrec.recsys.content import resemblances
from bookrec.recsys.data import Catalog, IdMap


def catalog() -> Catalog:
    items = IdMap(np.asarray([10, 20, 30, 40], dtype=np.int64))
    base = Catalog.empty(items)
    # tags: 1 on every book (too common to count), 2 on 10 and 20, 3 on 10 and 30
    tag_indptr = np.asarray([0, 3, 5, 7, 8], dtype=np.int64)
    tag_ids = np.asarray([1, 2, 3, 1, 2, 1, 3, 1], dtype=np.int64)
    return base.__class__(
        **{
            **base.__dict__,
            "title": np.asarray(["Carrie", "It", "Dune", "Emma"], dtype=object),
            "authors": np.asarray(
                ["Stephen King", "Stephen King, Bernie Wrightson", "Frank Herbert", "Jane Austen"],
                dtype=object,
            ),
            "tag_indptr": tag_indptr,
            "tag_ids": tag_ids,
            "tag_vocab_ids": np.asarray([1, 2, 3], dtype=np.int64),
            "tag_vocab_names": np.asarray(["to-read", "horror", "classics"], dtype=object),
        }
    )


def test_reasons_name_shared_authors_and_tags_and_fall_back_to_the_title() -> None:
    found = resemblances(catalog(), 10, [20, 30, 40, 99])
    assert found[20] == ["also by Stephen King", "shares tags: horror"]
    assert found[30] == ["shares tags: classics"]
    assert found[40] == ['similar to "Carrie"']
    assert 99 not in found  # not in the model's catalogue
    assert resemblances(catalog(), 99, [10]) == {}
