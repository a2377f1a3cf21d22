"""Synthetic goodbooks-scale ratings over a real book catalog.

The model is vectorised with numpy and driven by one seeded generator, so a seed fixes the output:

* activity: each reader's number of ratings is lognormal, at least ``min_per_reader`` and at most
  a fifth of the catalog, scaled so that the total hits ``SynthConfig.ratings``;
* popularity: a book is drawn with weight ``popularity ** POPULARITY_EXPONENT``, so a few books
  get most of the ratings;
* taste: every book belongs to a taste group (its most distinctive tag, else its first author).
  Each reader has 1-3 favourite groups, drawn by group weight, and takes about ``TASTE_SHARE`` of
  their draws from them and the rest from the whole catalog. Repeated (reader, book) draws are
  dropped and topped up from the whole catalog until every reader has exactly their count;
* ratings: the inverse CDF of the book's own 1-5 star histogram at a uniform draw; for books in
  the reader's favourite groups the larger of two uniforms is used, so in-taste books rate higher;
* time: each reader has an active window inside ``[start, end)`` and rates uniformly within it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from bookrec.datasets.sizes import DEFAULT_SEED, GOODBOOKS_RATINGS, GOODBOOKS_READERS

if TYPE_CHECKING:  # imported where files are read or written: the CLI, and with it every
    import pyarrow as pa  # API worker, imports this module for its defaults


POPULARITY_EXPONENT = 0.85
TASTE_SHARE = 0.55
MAX_FAVOURITE_GROUPS = 3
ACTIVITY_SIGMA = 1.0
CATALOG_SHARE_CAP = 5  # a reader rates at most 1/5 of the catalog (unless min_per_reader is more)
OVERSAMPLE = 2  # top-up rounds draw this many candidates per missing rating
POPULAR_TOP_UP_ROUNDS = 3  # later top-up rounds draw uniformly, which always converges quickly
MAX_TOP_UP_ROUNDS = 60
WINDOW_BETA = (1.5, 3.0)  # active window length as a share of [start, end): mean one third
# Share of 1..5 stars over all of goodbooks-10k ratings.csv; used for books without a histogram.
DEFAULT_HISTOGRAM = np.array([0.021, 0.060, 0.229, 0.358, 0.332])

Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SynthConfig:
    """Size, seed and time span of a synthetic ratings set (defaults: goodbooks-10k's size)."""

    readers: int = GOODBOOKS_READERS
    ratings: int = GOODBOOKS_RATINGS  # target total; the result is within +-3 % of it
    seed: int = DEFAULT_SEED
    min_per_reader: int = 19  # goodbooks readers have >= 19 ratings
    start: int = 1_388_534_400  # 2014-01-01 UTC, unix seconds
    end: int = 1_483_228_800  # 2017-01-01 UTC

    def __post_init__(self) -> None:
        if self.readers < 1 or self.min_per_reader < 1:
            raise ValueError("readers and min_per_reader must be at least 1")
        if self.end <= self.start:
            raise ValueError("end must be after start")


@dataclass(frozen=True)
class SynthCatalog:
    """The books to rate: dataset ids, popularity, 1-5 star histogram and taste group of each."""

    book_ids: Int64Array
    popularity: FloatArray  # > 0, e.g. ratings_count
    histogram: FloatArray  # (n_books, 5) share of 1..5 stars, rows sum to 1
    group: Int64Array  # taste group of each book, dense 0..G-1

    def __post_init__(self) -> None:
        n_books = len(self.book_ids)
        if n_books == 0:
            raise ValueError("the catalog has no books")
        if self.popularity.shape != (n_books,) or self.group.shape != (n_books,):
            raise ValueError("popularity and group need one value per book")
        if self.histogram.shape != (n_books, 5):
            raise ValueError("histogram needs one row of 5 star shares per book")
        if len(np.unique(self.book_ids)) != n_books:
            raise ValueError("book ids must be unique")
        if not (self.popularity > 0).all():
            raise ValueError("popularity must be positive")


@dataclass(frozen=True)
class SynthRatings:
    """Generated ratings, sorted by (user_id, timestamp), with no (user_id, book_id) pair twice."""

    user_id: Int64Array  # 1..readers
    book_id: Int64Array  # dataset book ids
    rating: npt.NDArray[np.int8]  # 1..5
    timestamp: Int64Array  # unix seconds in [start, end)


# ---------------------------------------------------------------------------------------------
# catalog


def read_catalog(directory: Path) -> SynthCatalog:
    """Read ``books.csv`` (and ``book_tags.csv`` if present) from a goodbooks-layout directory."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    books = pacsv.read_csv(
        directory / "books.csv",
        convert_options=pacsv.ConvertOptions(column_types={"authors": pa.string()}),
    )
    if "book_id" not in books.column_names or books.num_rows == 0:
        raise ValueError(f"{directory / 'books.csv'} has no book_id column or no rows")
    book_ids = books["book_id"].to_numpy().astype(np.int64)
    popularity = _popularity(books)
    histogram = _histogram(books)
    author_group = _primary_author_group(books)
    tags_path = directory / "book_tags.csv"
    if tags_path.exists() and "goodreads_book_id" in books.column_names:
        goodreads_ids = books["goodreads_book_id"].to_numpy().astype(np.int64)
        tag = _primary_tag(goodreads_ids, pacsv.read_csv(tags_path))
        # tagged books group by tag; untagged ones by author, numbered after every tag
        raw_group = np.where(tag >= 0, tag, tag.max(initial=0) + 1 + author_group)
        group = np.unique(raw_group, return_inverse=True)[1].astype(np.int64)
    else:
        group = author_group
    return SynthCatalog(book_ids, popularity, histogram, group)


def _popularity(books: pa.Table) -> FloatArray:
    """ratings_count, with 1 for books where it is missing or not positive."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if "ratings_count" not in books.column_names:
        return np.ones(books.num_rows)
    counts = pc.fill_null(books["ratings_count"].cast(pa.float64()), 0.0).to_numpy()
    return np.where(counts > 0, counts, 1.0)


def _histogram(books: pa.Table) -> FloatArray:
    """ratings_1..5 as shares; DEFAULT_HISTOGRAM for books where they are missing or all zero."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = [f"ratings_{stars}" for stars in range(1, 6)]
    if not set(columns) <= set(books.column_names):
        return np.tile(DEFAULT_HISTOGRAM, (books.num_rows, 1))
    counts = np.column_stack(
        [pc.fill_null(books[name].cast(pa.float64()), 0.0).to_numpy() for name in columns]
    )
    counts = np.clip(counts, 0.0, None)
    totals = counts.sum(axis=1, keepdims=True)
    usable = totals[:, 0] > 0
    shares = np.tile(DEFAULT_HISTOGRAM, (books.num_rows, 1))
    shares[usable] = counts[usable] / totals[usable]
    return shares


def _primary_author_group(books: pa.Table) -> Int64Array:
    """Dense group per first listed author; a book without authors is a group of its own."""
    import pyarrow.compute as pc

    if "authors" in books.column_names:
        authors = pc.fill_null(books["authors"], "")
        first = pc.utf8_trim_whitespace(pc.list_element(pc.split_pattern(authors, ","), 0))
        names = np.asarray(first.to_pylist(), dtype=object)
    else:
        names = np.full(books.num_rows, "", dtype=object)
    anonymous = names == ""
    names[anonymous] = "\0"  # placeholder so every unknown author sorts together, then split up
    author_ids = np.unique(names, return_inverse=True)[1].astype(np.int64)
    author_ids[anonymous] = author_ids.max() + 1 + np.arange(int(anonymous.sum()))
    return np.unique(author_ids, return_inverse=True)[1].astype(np.int64)


def _primary_tag(goodreads_ids: Int64Array, book_tags: pa.Table) -> Int64Array:
    """Most distinctive tag of each book (-1 if untagged): the largest count * idf.

    Plain largest count would put nearly every book under a shelf name like 'to-read'; weighting
    by inverse document frequency picks genre-like tags instead.
    """
    n_books = len(goodreads_ids)
    by_goodreads_id = np.argsort(goodreads_ids, kind="stable")
    tagged_ids = book_tags["goodreads_book_id"].to_numpy().astype(np.int64)
    tag_ids = book_tags["tag_id"].to_numpy().astype(np.int64)
    counts = book_tags["count"].to_numpy().astype(np.float64)
    position = np.searchsorted(goodreads_ids, tagged_ids, sorter=by_goodreads_id)
    position = np.minimum(position, n_books - 1)
    book_index = by_goodreads_id[position]
    known = (goodreads_ids[book_index] == tagged_ids) & (counts > 0) & (tag_ids >= 0)
    book_index, tag_ids, counts = book_index[known], tag_ids[known], counts[known]
    primary = np.full(n_books, -1, dtype=np.int64)
    if not len(tag_ids):
        return primary
    pairs = np.unique(book_index * (tag_ids.max() + 1) + tag_ids)
    books_per_tag = np.bincount(pairs % (tag_ids.max() + 1))
    tagged_books = len(np.unique(book_index))
    score = counts * np.log(tagged_books / books_per_tag[tag_ids])
    best_first = np.lexsort((tag_ids, -score, book_index))
    first_of_book = np.unique(book_index[best_first], return_index=True)[1]
    chosen = best_first[first_of_book]
    primary[book_index[chosen]] = tag_ids[chosen]
    return primary


# ---------------------------------------------------------------------------------------------
# generation


class _BookSampler:
    """Draws book indexes by weight, from the whole catalog or from within given groups.

    Books are laid out sorted by group, so one cumulative weight array serves both: a draw within
    group g is an inverse-CDF lookup restricted to g's slice of it.
    """

    def __init__(self, weight: FloatArray, group: Int64Array) -> None:
        group_size = np.bincount(group).astype(np.int64)
        self.order: Int64Array = np.argsort(group, kind="stable").astype(np.int64)
        self.cumulative: FloatArray = np.cumsum(weight[self.order])
        self.group_weight: FloatArray = np.bincount(group, weights=weight).astype(np.float64)
        self.group_end: Int64Array = np.cumsum(group_size)
        self.group_start: Int64Array = self.group_end - group_size
        self.weight_before_group: FloatArray = np.concatenate(([0.0], self.cumulative))[
            self.group_start
        ]

    def whole_catalog(self, uniform: FloatArray) -> Int64Array:
        """Books for uniforms in [0, 1), drawn with probability proportional to their weight."""
        position = np.searchsorted(self.cumulative, uniform * self.cumulative[-1], side="right")
        book: Int64Array = self.order[np.minimum(position, len(self.order) - 1)]
        return book

    def within(self, groups: Int64Array, uniform: FloatArray) -> Int64Array:
        """One book per (group, uniform), drawn by weight among that group's books."""
        target = self.weight_before_group[groups] + uniform * self.group_weight[groups]
        position = np.searchsorted(self.cumulative, target, side="right")
        position = np.clip(position, self.group_start[groups], self.group_end[groups] - 1)
        book: Int64Array = self.order[position]
        return book


def generate(catalog: SynthCatalog, config: SynthConfig = SynthConfig()) -> SynthRatings:
    """Generate seeded synthetic ratings over the catalog (see the module docstring)."""
    n_books = len(catalog.book_ids)
    if config.min_per_reader > n_books:
        raise ValueError(f"min_per_reader {config.min_per_reader} > {n_books} books")
    max_per_reader = max(config.min_per_reader, n_books // CATALOG_SHARE_CAP)
    if config.ratings < config.readers * config.min_per_reader:
        raise ValueError(
            f"{config.ratings:,} ratings are too few for {config.readers:,} readers: each rates at "
            f"least {config.min_per_reader}, so ask for at least "
            f"{config.readers * config.min_per_reader:,}"
        )
    if config.ratings > config.readers * max_per_reader:
        raise ValueError(
            f"{config.ratings:,} ratings are too many for {config.readers:,} readers over "
            f"{n_books:,} books: each rates at most {max_per_reader}, so ask for at most "
            f"{config.readers * max_per_reader:,}"
        )
    rng = np.random.default_rng(config.seed)
    sampler = _BookSampler(catalog.popularity**POPULARITY_EXPONENT, catalog.group)

    per_reader = _ratings_per_reader(rng, config, max_per_reader)
    favourites, favourite_count = _favourite_groups(rng, sampler.group_weight, config.readers)
    keys = _distinct_draws(rng, sampler, per_reader, favourites, favourite_count, n_books)
    reader, book = np.divmod(keys, n_books)
    del keys
    rating = _ratings(rng, catalog, reader, book, favourites)
    timestamp = _timestamps(rng, config, reader)

    # reader * span + seconds since start orders rows by reader, then by time
    span = config.end - config.start
    order = np.argsort(reader * span + (timestamp - config.start), kind="stable")
    return SynthRatings(
        user_id=reader[order] + 1,
        book_id=catalog.book_ids[book[order]].astype(np.int64),
        rating=rating[order],
        timestamp=timestamp[order],
    )


def _ratings_per_reader(
    rng: np.random.Generator, config: SynthConfig, max_per_reader: int
) -> Int64Array:
    """Lognormal counts in [min_per_reader, max_per_reader], scaled to total config.ratings."""
    shape = np.exp(ACTIVITY_SIGMA * rng.standard_normal(config.readers))

    def counts(scale: float) -> Int64Array:
        unclipped = np.floor(config.min_per_reader + scale * shape)
        return np.clip(unclipped, config.min_per_reader, max_per_reader).astype(np.int64)

    low, high = 0.0, max_per_reader / float(shape.min())  # at `high` every reader is capped
    for _ in range(100):  # bisection on the scale; the total only grows with it
        middle = (low + high) / 2
        if counts(middle).sum() < config.ratings:
            low = middle
        else:
            high = middle
    return counts(high)


def _favourite_groups(
    rng: np.random.Generator, group_weight: FloatArray, readers: int
) -> tuple[Int64Array, Int64Array]:
    """Favourite groups (readers, MAX_FAVOURITE_GROUPS) and how many of them each reader has.

    Only a reader's first k slots are drawn from; the unused ones repeat the first favourite.
    """
    drawn = rng.choice(
        len(group_weight), size=(readers, MAX_FAVOURITE_GROUPS), p=group_weight / group_weight.sum()
    )
    how_many = rng.integers(1, MAX_FAVOURITE_GROUPS + 1, size=readers)
    used = np.arange(MAX_FAVOURITE_GROUPS) < how_many[:, None]
    return np.where(used, drawn, drawn[:, :1]).astype(np.int64), how_many.astype(np.int64)


def _distinct_draws(
    rng: np.random.Generator,
    sampler: _BookSampler,
    per_reader: Int64Array,
    favourites: Int64Array,
    favourite_count: Int64Array,
    n_books: int,
) -> Int64Array:
    """Sorted distinct keys reader * n_books + book, exactly per_reader[r] for reader r."""
    readers = np.arange(len(per_reader), dtype=np.int64)
    in_taste = rng.binomial(per_reader, TASTE_SHARE)
    taste_reader = np.repeat(readers, in_taste)
    slot = (rng.random(len(taste_reader)) * favourite_count[taste_reader]).astype(np.int64)
    taste_group = favourites[taste_reader, slot]
    taste_book = sampler.within(taste_group, rng.random(len(taste_reader)))
    other_reader = np.repeat(readers, per_reader - in_taste)
    other_book = sampler.whole_catalog(rng.random(len(other_reader)))
    keys = _sorted_distinct(
        np.concatenate((taste_reader * n_books + taste_book, other_reader * n_books + other_book))
    )
    del taste_reader, slot, taste_group, taste_book, other_reader, other_book

    have = np.bincount(keys // n_books, minlength=len(per_reader))
    for top_up_round in range(MAX_TOP_UP_ROUNDS):
        missing = per_reader - have
        if not missing.any():
            return keys
        short = np.flatnonzero(missing)
        candidate_reader = np.repeat(short, OVERSAMPLE * missing[short])
        if top_up_round < POPULAR_TOP_UP_ROUNDS:
            candidate_book = sampler.whole_catalog(rng.random(len(candidate_reader)))
        else:
            candidate_book = rng.integers(0, n_books, size=len(candidate_reader))
        candidates = _sorted_distinct(candidate_reader * n_books + candidate_book)
        candidates = candidates[~_contains(keys, candidates)]
        accepted = _random_subset_per_reader(rng, candidates, missing, n_books)
        keys = np.insert(keys, np.searchsorted(keys, accepted), accepted)
        have += np.bincount(accepted // n_books, minlength=len(per_reader))
    raise RuntimeError(f"could not draw distinct books in {MAX_TOP_UP_ROUNDS} rounds")


def _sorted_distinct(keys: Int64Array) -> Int64Array:
    """np.unique for int64 keys, sorting in place (much faster than numpy 2's hashing unique)."""
    keys.sort()
    first = np.ones(len(keys), dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    return keys[first]


def _contains(sorted_keys: Int64Array, values: Int64Array) -> npt.NDArray[np.bool_]:
    """Whether each value occurs in sorted_keys."""
    position = np.minimum(np.searchsorted(sorted_keys, values), len(sorted_keys) - 1)
    found: npt.NDArray[np.bool_] = sorted_keys[position] == values
    return found


def _random_subset_per_reader(
    rng: np.random.Generator, candidates: Int64Array, limit: Int64Array, n_books: int
) -> Int64Array:
    """Sorted random subset of candidate keys, at most limit[r] of them for reader r."""
    reader = candidates // n_books
    # reader plus a uniform in [0, 1) sorts by reader, and randomly within each reader
    shuffled = np.argsort(reader + rng.random(len(candidates)))
    candidates, reader = candidates[shuffled], reader[shuffled]
    per_reader = np.bincount(reader)
    first_of_reader = np.cumsum(per_reader) - per_reader
    rank = np.arange(len(candidates)) - first_of_reader[reader]
    return np.sort(candidates[rank < limit[reader]])


def _ratings(
    rng: np.random.Generator,
    catalog: SynthCatalog,
    reader: Int64Array,
    book: Int64Array,
    favourites: Int64Array,
) -> npt.NDArray[np.int8]:
    """Stars from each book's histogram by inverse CDF; favourite-group books skew upward."""
    book_group = catalog.group[book]
    in_taste = np.zeros(len(book), dtype=bool)
    for slot in range(MAX_FAVOURITE_GROUPS):
        in_taste |= book_group == favourites[reader, slot]
    del book_group
    uniform = rng.random(len(book))
    uniform[in_taste] = np.maximum(uniform[in_taste], rng.random(int(in_taste.sum())))
    del in_taste
    cumulative = np.cumsum(catalog.histogram, axis=1)
    rating = np.ones(len(book), dtype=np.int8)
    for stars_below in range(4):  # one more star for every CDF step the uniform is past
        rating += uniform >= cumulative[book, stars_below]
    return rating


def _timestamps(rng: np.random.Generator, config: SynthConfig, reader: Int64Array) -> Int64Array:
    """Unix seconds, uniform within each reader's active window inside [start, end)."""
    span = config.end - config.start
    share = rng.beta(*WINDOW_BETA, size=config.readers)
    window_length = np.maximum(1, (share * span).astype(np.int64))
    window_start = config.start + (rng.random(config.readers) * (span - window_length + 1))
    offset = rng.random(len(reader)) * window_length[reader]
    timestamp: Int64Array = window_start.astype(np.int64)[reader] + offset.astype(np.int64)
    return timestamp


# ---------------------------------------------------------------------------------------------
# output


def write_csv(ratings: SynthRatings, path: Path) -> None:
    """Write user_id,book_id,rating,timestamp CSV atomically (via path.with_suffix('.tmp'))."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.table(
        {
            "user_id": ratings.user_id,
            "book_id": ratings.book_id,
            "rating": ratings.rating,
            "timestamp": ratings.timestamp,
        }
    )
    partial = path.with_suffix(".tmp")
    with partial.open("wb") as out:
        out.write(b"user_id,book_id,rating,timestamp\n")  # pyarrow would quote the header names
        pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=False))
    partial.replace(path)
