"""Tests for the synthetic ratings generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from scipy.stats import spearmanr

from bookrec.datasets.synth import (
    DEFAULT_HISTOGRAM,
    SynthCatalog,
    SynthConfig,
    SynthRatings,
    generate,
    read_catalog,
    write_csv,
)

GOODBOOKS = Path(__file__).resolve().parents[2] / "src" / "bookrec" / "demo" / "goodbooks-10k"
SMALL = SynthConfig(readers=2_000, ratings=200_000, seed=7)


@pytest.fixture(scope="module")
def goodbooks_catalog() -> SynthCatalog:
    """The real goodbooks-10k catalog, as bundled for the demo."""
    return read_catalog(GOODBOOKS)


@pytest.fixture(scope="module")
def goodbooks_ratings(goodbooks_catalog: SynthCatalog) -> SynthRatings:
    return generate(goodbooks_catalog, SMALL)


def tiny_catalog(groups: int = 10, books_per_group: int = 20) -> SynthCatalog:
    """Equal-popularity books in equal groups, all with a flat 1-5 star histogram."""
    n_books = groups * books_per_group
    return SynthCatalog(
        book_ids=np.arange(101, 101 + n_books, dtype=np.int64),
        popularity=np.ones(n_books),
        histogram=np.full((n_books, 5), 0.2),
        group=np.repeat(np.arange(groups, dtype=np.int64), books_per_group),
    )


TINY = SynthConfig(readers=300, ratings=9_000, seed=3, min_per_reader=19)


def mean_rating_in_most_rated_group(
    ratings: SynthRatings, catalog: SynthCatalog
) -> tuple[float, float]:
    """Mean rating of each reader's books in their most-rated group, and of all other rows."""
    book_group = catalog.group[np.searchsorted(catalog.book_ids, ratings.book_id)]
    n_groups = int(catalog.group.max()) + 1
    per_reader_group = np.bincount(
        ratings.user_id * n_groups + book_group, minlength=(ratings.user_id.max() + 1) * n_groups
    ).reshape(-1, n_groups)
    most_rated = per_reader_group.argmax(axis=1)
    in_group = book_group == most_rated[ratings.user_id]
    return float(ratings.rating[in_group].mean()), float(ratings.rating[~in_group].mean())


# ---------------------------------------------------------------------------------------------
# generate


def test_same_seed_gives_identical_arrays_and_another_seed_differs() -> None:
    catalog = tiny_catalog()
    first, second = generate(catalog, TINY), generate(catalog, TINY)
    for name in ("user_id", "book_id", "rating", "timestamp"):
        assert np.array_equal(getattr(first, name), getattr(second, name))
    other = generate(catalog, SynthConfig(readers=300, ratings=9_000, seed=4))
    assert not np.array_equal(first.book_id, other.book_id[: len(first.book_id)])


def test_dtypes_ranges_and_order(goodbooks_catalog: SynthCatalog) -> None:
    ratings = generate(goodbooks_catalog, SMALL)
    assert ratings.user_id.dtype == np.int64
    assert ratings.book_id.dtype == np.int64
    assert ratings.rating.dtype == np.int8
    assert ratings.timestamp.dtype == np.int64
    assert set(np.unique(ratings.rating)) == {1, 2, 3, 4, 5}
    assert set(np.unique(ratings.user_id)) == set(range(1, SMALL.readers + 1))
    assert np.isin(ratings.book_id, goodbooks_catalog.book_ids).all()
    assert ratings.timestamp.min() >= SMALL.start
    assert ratings.timestamp.max() < SMALL.end
    assert np.bincount(ratings.user_id)[1:].min() >= SMALL.min_per_reader
    same_user = ratings.user_id[1:] == ratings.user_id[:-1]
    assert (ratings.user_id[1:] >= ratings.user_id[:-1]).all()
    assert (ratings.timestamp[1:][same_user] >= ratings.timestamp[:-1][same_user]).all()


def test_no_reader_rates_a_book_twice(goodbooks_ratings: SynthRatings) -> None:
    pairs = goodbooks_ratings.user_id * 1_000_000 + goodbooks_ratings.book_id
    assert len(np.unique(pairs)) == len(pairs)


@pytest.mark.parametrize("config", [SMALL, SynthConfig(readers=500, ratings=60_000, seed=1)])
def test_total_is_within_three_percent(
    goodbooks_catalog: SynthCatalog, config: SynthConfig
) -> None:
    total = len(generate(goodbooks_catalog, config).rating)
    assert abs(total - config.ratings) <= 0.03 * config.ratings


def test_tiny_catalog_keeps_every_reader_within_bounds() -> None:
    ratings = generate(tiny_catalog(), TINY)
    per_reader = np.bincount(ratings.user_id)[1:]
    assert per_reader.min() >= TINY.min_per_reader
    assert per_reader.max() <= max(TINY.min_per_reader, 200 // 5)
    assert abs(len(ratings.rating) - TINY.ratings) <= 0.03 * TINY.ratings


def test_a_few_books_get_most_ratings(goodbooks_ratings: SynthRatings) -> None:
    per_book = np.sort(np.unique(goodbooks_ratings.book_id, return_counts=True)[1])[::-1]
    top_percent = per_book[: 10_000 // 100].sum() / len(goodbooks_ratings.book_id)
    assert top_percent > 0.10  # uniform would give 1 %


def test_readers_rate_their_most_rated_group_higher() -> None:
    catalog = tiny_catalog()  # every book has the same flat histogram: only taste can differ
    in_group, rest = mean_rating_in_most_rated_group(generate(catalog, TINY), catalog)
    assert in_group > rest + 0.3


def test_taste_signal_on_the_real_catalog(
    goodbooks_catalog: SynthCatalog, goodbooks_ratings: SynthRatings
) -> None:
    in_group, rest = mean_rating_in_most_rated_group(goodbooks_ratings, goodbooks_catalog)
    assert in_group > rest + 0.2


def test_book_mean_rating_follows_its_histogram(
    goodbooks_catalog: SynthCatalog, goodbooks_ratings: SynthRatings
) -> None:
    index = np.searchsorted(goodbooks_catalog.book_ids, goodbooks_ratings.book_id)
    n_books = len(goodbooks_catalog.book_ids)
    count = np.bincount(index, minlength=n_books)
    total = np.bincount(index, weights=goodbooks_ratings.rating, minlength=n_books)
    rated = count >= 50
    histogram_mean = goodbooks_catalog.histogram @ np.arange(1, 6)
    assert rated.sum() > 100
    assert spearmanr(total[rated] / count[rated], histogram_mean[rated]).statistic > 0.5


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (SynthConfig(readers=100, ratings=1_000), "at least"),
        (SynthConfig(readers=10, ratings=1_000), "at most"),
        (SynthConfig(readers=10, ratings=1_000, min_per_reader=201), "min_per_reader"),
    ],
)
def test_impossible_sizes_are_refused(config: SynthConfig, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate(tiny_catalog(), config)


def test_config_refuses_empty_time_window() -> None:
    with pytest.raises(ValueError, match="end"):
        SynthConfig(start=10, end=10)


# ---------------------------------------------------------------------------------------------
# read_catalog


def test_read_goodbooks_catalog(goodbooks_catalog: SynthCatalog) -> None:
    n_books = len(goodbooks_catalog.book_ids)
    assert n_books == 10_000
    assert (goodbooks_catalog.popularity > 0).all()
    assert np.allclose(goodbooks_catalog.histogram.sum(axis=1), 1.0)
    groups = np.unique(goodbooks_catalog.group)
    assert np.array_equal(groups, np.arange(len(groups)))
    assert 1_000 < len(groups) < n_books  # authors with several books share a group


def write_books(directory: Path, columns: dict[str, list[object]]) -> None:
    pacsv.write_csv(pa.table(columns), directory / "books.csv")


def test_read_catalog_falls_back_when_columns_are_missing(tmp_path: Path) -> None:
    write_books(tmp_path, {"book_id": [5, 6, 7], "authors": ["A, B", None, "A"]})
    catalog = read_catalog(tmp_path)
    assert catalog.book_ids.tolist() == [5, 6, 7]
    assert catalog.popularity.tolist() == [1.0, 1.0, 1.0]
    assert np.allclose(catalog.histogram, DEFAULT_HISTOGRAM)
    assert catalog.group[0] == catalog.group[2] != catalog.group[1]  # first author; none alone


def test_read_catalog_uses_histogram_and_ratings_count(tmp_path: Path) -> None:
    write_books(
        tmp_path,
        {
            "book_id": [1, 2],
            "authors": ["A", "B"],
            "ratings_count": [40, 0],
            **{f"ratings_{stars}": [stars * 2, 0] for stars in range(1, 6)},
        },
    )
    catalog = read_catalog(tmp_path)
    assert catalog.popularity.tolist() == [40.0, 1.0]
    assert np.allclose(catalog.histogram[0], np.arange(1, 6) / 15)
    assert np.allclose(catalog.histogram[1], DEFAULT_HISTOGRAM)  # all-zero histogram


def test_read_catalog_groups_by_most_distinctive_tag(tmp_path: Path) -> None:
    write_books(
        tmp_path,
        {
            "book_id": [1, 2, 3, 4, 5],
            "goodreads_book_id": [11, 12, 13, 14, 15],
            "authors": ["A", "B", "C", "C", "C"],
        },
    )
    book_tags = pa.table(
        {  # tag 0 ('to-read') is on every tagged book with the biggest counts; 7, 8 are genres
            "goodreads_book_id": [11, 11, 12, 12, 13, 13, 14, 99],
            "tag_id": [0, 7, 0, 7, 0, 8, 0, 8],
            "count": [900, 50, 800, 40, 700, 30, 600, 5],
        }
    )
    pacsv.write_csv(book_tags, tmp_path / "book_tags.csv")
    group = read_catalog(tmp_path).group
    assert group[0] == group[1]  # both by tag 7, despite different authors
    # book 3 by tag 8, book 4 by tag 0 (its only tag), untagged book 5 by author C
    assert len({int(g) for g in group[1:]}) == 4
    assert np.array_equal(np.unique(group), np.arange(4))


# ---------------------------------------------------------------------------------------------
# write_csv


def test_write_csv_round_trip(tmp_path: Path) -> None:
    ratings = generate(tiny_catalog(), TINY)
    path = tmp_path / "ratings.csv"
    write_csv(ratings, path)
    assert path.read_text().splitlines()[0] == "user_id,book_id,rating,timestamp"
    assert not path.with_suffix(".tmp").exists()
    table = pacsv.read_csv(path)
    assert table.column_names == ["user_id", "book_id", "rating", "timestamp"]
    for name in table.column_names:
        assert np.array_equal(table[name].to_numpy(), getattr(ratings, name))
