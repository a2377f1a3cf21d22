"""Training from the database into the model registry, loading for serving, batch lists.

Runs on SQLite and PostgreSQL (the `engine` fixture).
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine
from tests.fixtures.registry import RegistryView

from bookrec.errors import InvalidInput
from bookrec.importing.importer import import_directory
from bookrec.readers import repository as activity
from bookrec.readers.snapshot import load_snapshot
from bookrec.recsys import registry as algorithms
from bookrec.recsys.artifacts import sha256_of
from bookrec.recsys.data import ReaderHistory
from bookrec.recsys.ease import EaseRecommender
from bookrec.recsys.hybrid import HybridRecommender
from bookrec.serving.loaded import LoadedModel, load_version
from bookrec.serving.service import score_readers
from bookrec.training.service import train

FAST_HYBRID: dict[str, Any] = {
    "components": {
        "ease": {},
        "itemknn": {"neighbours": 30},
        "als": {"factors": 8, "iterations": 3},
        "content": {"neighbours": 30},
        "popularity": {},
    },
    "validation_readers": 50,
    "ease_l2_grid": [100.0, 500.0],
}
K = 10


def ratings_by_user(dataset: Path) -> dict[int, set[int]]:
    """Data set user id -> books they rated, read straight from ratings.csv."""
    rated: dict[int, set[int]] = {}
    with (dataset / "ratings.csv").open() as handle:
        for row in csv.DictReader(handle):
            rated.setdefault(int(row["user_id"]), set()).add(int(row["book_id"]))
    return rated


def shelf_by_user(dataset: Path) -> dict[int, set[int]]:
    shelf: dict[int, set[int]] = {}
    with (dataset / "to_read.csv").open() as handle:
        for row in csv.DictReader(handle):
            shelf.setdefault(int(row["user_id"]), set()).add(int(row["book_id"]))
    return shelf


@pytest.fixture
def registry(engine: Engine, tmp_path: Path) -> RegistryView:
    return RegistryView(engine, tmp_path / "models")


def reader_activity(engine: Engine, user: int) -> activity.ReaderActivity:
    """A data set reader's ratings and shelf, as serving reads them."""
    with engine.connect() as connection:
        reader = activity.reader_ids_by_external(connection, [user])[user]
        return activity.activity_of(connection, reader)


def history_of(engine: Engine, user: int) -> ReaderHistory:
    return reader_activity(engine, user).history


def test_train_hybrid_registers_a_complete_active_version(
    imported: Engine, registry: RegistryView, small_dataset: Path
) -> None:
    stages: list[tuple[str, float]] = []
    result = train(
        imported,
        registry.registry,
        "hybrid",
        FAST_HYBRID,
        progress=lambda s, p: stages.append((s, p)),
    )
    version = result.version
    assert result.promoted and result.gate["decision"] == "promote"
    assert registry.active_number() == version.number == 1
    assert [s for s, _ in stages][:3] == ["loading data", "fitting", "evaluating"]
    percents = [p for _, p in stages]
    assert percents == sorted(percents) and percents[0] == 0 and percents[-1] == 100

    stored = registry.get(1)
    assert stored.algo == "hybrid" and stored.number == 1 and stored.status == "active"
    n_ratings = sum(len(books) for books in ratings_by_user(small_dataset).values())
    assert stored.data["ratings"] == n_ratings
    assert stored.data["readers"] == 150
    assert stored.data["books"] == 300
    assert stored.data["newest_timestamp"] is not None  # synthetic ratings carry times
    assert stored.params["validation_readers"] == 50
    assert stored.params["components"]["als"] == {"factors": 8, "iterations": 3}
    assert {"load", "fit", "evaluate", "save", "total"} <= set(stored.timings)
    assert stored.metrics["ndcg@10"] is not None
    artifacts = {relative.split("/")[0] for relative in stored.checksums}
    assert artifacts == {"model", "popular", "trending", "lists"}
    for relative, digest in stored.checksums.items():
        assert sha256_of(version.path / relative) == digest, relative
    loaded_manifest = json.loads((version.path / "model" / "manifest.json").read_text())
    dropped = set(loaded_manifest["validation"].get("dropped", []))
    for component in FAST_HYBRID["components"]:
        saved = (version.path / "model" / "components" / component / "manifest.json").is_file()
        assert saved != (component in dropped), component  # weighing nothing: not saved
    assert not [p for p in registry.root.iterdir() if p.name.startswith(".staging")]

    loaded = load_version(registry.get(version.number))
    assert isinstance(loaded, LoadedModel)
    assert loaded.algo == "hybrid" and isinstance(loaded.model, HybridRecommender)
    rated = ratings_by_user(small_dataset)
    history = history_of(imported, 1)
    assert set(history.book_ids.tolist()) == rated[1]
    picks = loaded.model.recommend(history, K)
    books = [p.book_id for p in picks]
    assert len(books) == K == len(set(books))
    assert not set(books) & rated[1]
    assert loaded.model.explain(history, books[0])
    for fallback in (loaded.popular, loaded.trending):
        assert len(fallback.recommend(history, K)) == K


def test_the_served_model_is_fitted_on_every_rating(
    imported: Engine, registry: RegistryView, small_dataset: Path
) -> None:
    """The gate holds out ratings to score the candidate; the version saved has seen them."""
    version = train(imported, registry.registry, "ease").version
    n_ratings = sum(len(books) for books in ratings_by_user(small_dataset).values())
    assert version.data["held_out_ratings"] > 0
    loaded = load_version(version)
    assert isinstance(loaded.model, EaseRecommender)
    assert loaded.model.counts["n_interactions"] == n_ratings
    assert {"fit", "evaluate", "refit"} <= set(version.timings)


def test_train_without_an_algorithm_trains_the_default(
    imported: Engine, registry: RegistryView
) -> None:
    started = time.perf_counter()
    version = train(imported, registry.registry).version
    seconds = time.perf_counter() - started
    assert version.algo == algorithms.DEFAULT_ALGO
    assert registry.active_number() == version.number
    assert seconds < 120, f"default training took {seconds:.0f}s on 4,000 ratings"
    loaded = load_version(version)
    assert loaded.algo == algorithms.DEFAULT_ALGO
    assert type(loaded.model) is algorithms.ALGORITHMS[algorithms.DEFAULT_ALGO]


def test_train_refuses_bad_requests_and_keeps_the_registry_clean(
    engine: Engine, registry: RegistryView, small_dataset: Path
) -> None:
    with pytest.raises(InvalidInput, match="no ratings"):
        train(engine, registry.registry, "popularity")
    import_directory(engine, small_dataset)
    with pytest.raises(InvalidInput, match="unknown algorithm"):
        train(engine, registry.registry, "nope")
    with pytest.raises(InvalidInput, match="bogus"):
        train(engine, registry.registry, "als", {"bogus": 1})
    assert registry.versions() == [] and registry.active_number() is None
    first = train(engine, registry.registry, "popularity", activate=False).version
    assert registry.active_number() is None
    assert not (first.path / "model").exists()  # popularity serves from popular/
    assert load_version(first).model.recommend(history_of(engine, 2), K)


def test_bulk_scoring_skips_rated_and_shelved_books(
    imported: Engine, registry: RegistryView, small_dataset: Path
) -> None:
    version = train(imported, registry.registry, "hybrid", FAST_HYBRID).version
    model = load_version(version).model
    users = list(range(1, 151))
    with imported.connect() as connection:
        mapping = activity.reader_ids_by_external(connection, users)
        interactions = load_snapshot(connection).interactions
        shelves = activity.all_shelves(connection)
    assert len(mapping) == 150 and len(shelves[0]) == 20
    readers = np.asarray([mapping[u] for u in users] + [-1], dtype=np.int64)
    book_ids, scores = score_readers(model, interactions, readers, K, shelves)
    assert book_ids.shape == scores.shape == (151, K)

    rated, shelved = ratings_by_user(small_dataset), shelf_by_user(small_dataset)
    for row, user in enumerate(users):
        books = book_ids[row].tolist()
        assert -1 not in books and len(set(books)) == K, user
        assert not set(books) & rated[user], user
        assert not set(books) & shelved.get(user, set()), user
        assert np.all(np.diff(scores[row]) <= 0), user
    # an unknown reader gets the cold-start list: popular books
    assert len(set(book_ids[-1].tolist())) == K and -1 not in book_ids[-1]

    # one at a time from the live history agrees with the batch
    for row, user in enumerate(users[:20]):
        one = reader_activity(imported, user)
        single = [r.book_id for r in model.recommend(one.history, K, exclude=one.shelf)]
        assert single[:5] == book_ids[row, :5].tolist(), user

    # shelve each reader's current top pick: it must give way to the next one
    tops = book_ids[:150, 0]
    shelf = (readers[:150], tops)
    shelved_ids, _ = score_readers(model, interactions, readers[:150], K, shelf)
    assert not (shelved_ids == tops[:, None]).any()
    np.testing.assert_array_equal(shelved_ids[:, : K - 1], book_ids[:150, 1:K])
