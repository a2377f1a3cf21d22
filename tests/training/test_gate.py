"""The evaluation gate: the split, the decision, and training through it (SQLite and PostgreSQL).

On the small data set (150 readers, 300 books, ~4,000 ratings) popularity scores ndcg@10 ≈ 0.12
on the gate's split. ALS with its goodbooks-scale defaults (64 factors, λ = 0.05) overfits so
few ratings and scores ≈ 0.04, which the gate rightly rejects; ALS sized for the data
(32 factors, λ = 10) scores ≈ 0.14 and passes. Both facts are used below.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, text
from tests.fixtures.registry import RegistryView

from bookrec.config import Settings
from bookrec.model_registry.version import ModelVersion
from bookrec.readers.snapshot import load_snapshot
from bookrec.recsys.data import Interactions
from bookrec.recsys.splits import sampled_holdout
from bookrec.training import gate
from bookrec.training.service import train

SIZED_ALS: dict[str, Any] = {"factors": 32, "regularization": 10.0}


def gate_settings(**values: Any) -> Settings:
    return Settings(BOOKREC_ENV="test", **values)


@pytest.fixture
def registry(imported: Engine, tmp_path: Path) -> RegistryView:
    return RegistryView(imported, tmp_path / "models")


def toy(readers: int = 40, per_reader: int = 10) -> Interactions:
    users = np.repeat(np.arange(1, readers + 1), per_reader)
    books = np.tile(np.arange(1, per_reader + 1), readers)
    return Interactions.from_ids(users, books, np.full(len(users), 5.0, dtype=np.float32))


def test_sampled_holdout_holds_out_a_fifth_of_a_sample_of_readers() -> None:
    interactions = toy()
    train_part, test_part = sampled_holdout(interactions, readers=10, fraction=0.2, seed=3)
    assert len(train_part) + len(test_part) == len(interactions)
    held_by = np.bincount(test_part.user_index, minlength=40)
    assert (held_by > 0).sum() == 10 and set(held_by[held_by > 0].tolist()) == {2}
    again = sampled_holdout(interactions, readers=10, fraction=0.2, seed=3)[1]
    np.testing.assert_array_equal(again.user_index, test_part.user_index)
    np.testing.assert_array_equal(again.item_index, test_part.item_index)
    other = sampled_holdout(interactions, readers=10, fraction=0.2, seed=4)[1]
    assert not np.array_equal(other.user_index, test_part.user_index)
    # more readers asked for than there are: everyone eligible is sampled
    assert len(sampled_holdout(interactions, readers=1000)[1]) == 40 * 2
    # readers with too few ratings stay whole in train
    assert len(sampled_holdout(toy(per_reader=4), readers=1000)[1]) == 0


def test_the_split_does_not_depend_on_row_order(imported: Engine) -> None:
    with imported.connect() as connection:
        snapshot = load_snapshot(connection)
    interactions = snapshot.interactions
    order = np.random.default_rng(0).permutation(len(interactions))
    shuffled = Interactions(
        interactions.users,
        interactions.items,
        interactions.user_index[order],
        interactions.item_index[order],
        interactions.rating[order],
        None if interactions.timestamp is None else interactions.timestamp[order],
    )
    first = gate.make_split(interactions, snapshot.catalog, 50, "ndcg@10")
    second = gate.make_split(shuffled, snapshot.catalog, 50, "ndcg@10")
    assert first.key == second.key and first.key["k"] == 10
    np.testing.assert_array_equal(first.test.user_index, second.test.user_index)
    np.testing.assert_array_equal(first.test.item_index, second.test.item_index)
    assert len(np.unique(first.test.user_index)) == 50
    assert gate.make_split(interactions, snapshot.catalog, 60, "ndcg@10").key != first.key


def test_first_model_is_promoted_and_its_gate_recorded(registry: RegistryView) -> None:
    result = train(registry.engine, registry.registry, "popularity", settings=gate_settings())
    assert result.promoted and registry.active_number() == result.version.number
    recorded = registry.get(result.version.number)
    assert recorded.gate == result.gate
    assert result.gate["decision"] == "promote" and result.gate["passed"] is True
    assert "first model" in result.gate["reason"] and result.gate["compared_with"] is None
    assert recorded.metrics["ndcg@10"] == result.gate["candidate"] > 0
    assert recorded.metrics["evaluated_readers"] > 0
    assert recorded.data["fingerprint"] == result.gate["split"]["fingerprint"]


def test_a_worse_candidate_is_registered_but_not_activated(registry: RegistryView) -> None:
    settings = gate_settings()
    first = train(registry.engine, registry.registry, "popularity", settings=settings).version
    result = train(registry.engine, registry.registry, "als", settings=settings)
    assert not result.promoted
    assert registry.active_number() == first.number
    gate_record = result.gate
    assert gate_record["decision"] == "reject" and gate_record["passed"] is False
    assert gate_record["compared_with"] == first.number
    assert gate_record["candidate"] < gate_record["threshold"] < gate_record["active"]
    assert gate_record["active"] == pytest.approx(first.metrics["ndcg@10"])
    assert gate_record["active_source"] == "reused"  # same data, same split: no refit
    stored = registry.get(result.version.number)
    assert stored.status == "candidate" and stored.gate == gate_record
    assert "evaluation gate" in (stored.status_reason or "")


def test_tolerance_and_force_are_respected(registry: RegistryView) -> None:
    train(registry.engine, registry.registry, "popularity", settings=gate_settings())
    loose = train(
        registry.engine,
        registry.registry,
        "als",
        settings=gate_settings(BOOKREC_GATE_TOLERANCE=0.8),
    )
    assert loose.promoted and loose.gate["passed"] and loose.gate["tolerance"] == 0.8
    registry.rollback()
    forced = train(registry.engine, registry.registry, "als", force=True, settings=gate_settings())
    assert forced.promoted and registry.active_number() == forced.version.number
    assert forced.gate["forced"] is True and forced.gate["passed"] is False
    assert forced.gate["decision"] == "promote" and "by force" in forced.gate["reason"]
    # not activating still records the gate's verdict
    kept = train(
        registry.engine, registry.registry, "popularity", activate=False, settings=gate_settings()
    )
    assert not kept.promoted and kept.gate["passed"] is True
    assert registry.active_number() == forced.version.number


def test_a_better_candidate_replaces_the_active_one(registry: RegistryView) -> None:
    settings = gate_settings()
    train(registry.engine, registry.registry, "popularity", settings=settings)
    result = train(registry.engine, registry.registry, "als", SIZED_ALS, settings=settings)
    assert result.promoted, result.gate
    assert result.gate["candidate"] >= result.gate["active"]
    assert [v.status for v in registry.versions()] == ["retired", "active"]


def test_new_data_makes_the_gate_refit_the_active_model(
    registry: RegistryView, imported: Engine
) -> None:
    settings = gate_settings()
    first = train(imported, registry.registry, "popularity", settings=settings).version
    with imported.begin() as connection:
        connection.execute(
            text("DELETE FROM ratings WHERE reader_id IN (SELECT min(reader_id) FROM readers)")
        )
    result = train(imported, registry.registry, "popularity", settings=settings)
    assert result.gate["active_source"] == "refit"
    assert result.gate["split"]["fingerprint"] != first.gate["split"]["fingerprint"]
    # the same recipe on the same split scores the same: the refit is faithful
    assert result.gate["active"] == pytest.approx(result.gate["candidate"])
    assert result.promoted


def test_decide_reuses_a_recorded_result_on_an_identical_split(imported: Engine) -> None:
    with imported.connect() as connection:
        snapshot = load_snapshot(connection)
    split = gate.make_split(snapshot.interactions, snapshot.catalog, 50, "ndcg@10")
    active = ModelVersion(
        number=3,
        algo="no-such-algo",
        status="active",
        path=Path("/nonexistent"),
        metrics={"ndcg@10": 0.5},
        gate={"split": split.key},
    )
    decision = gate.decide(
        {"ndcg@10": 0.495}, active, split, snapshot.catalog, metric="ndcg@10", tolerance=0.02
    )
    assert decision["active_source"] == "reused" and decision["active"] == 0.5
    assert decision["passed"] and decision["threshold"] == pytest.approx(0.49)
    worse = gate.decide(
        {"ndcg@10": 0.48}, active, split, snapshot.catalog, metric="ndcg@10", tolerance=0.02
    )
    assert worse["decision"] == "reject"
    # a different split means a refit; a recipe that cannot be refitted does not block
    stale = replace(active, gate={"split": {}})
    refit = gate.decide(
        {"ndcg@10": 0.1}, stale, split, snapshot.catalog, metric="ndcg@10", tolerance=0.02
    )
    assert refit["active_source"] == "refit" and refit["passed"]
    assert "could not be refitted" in refit["reason"]


def test_gate_settings_are_validated() -> None:
    assert gate_settings().gate_metric == "ndcg@10"
    assert gate_settings(BOOKREC_GATE_METRIC="recall@20").gate_metric == "recall@20"
    for bad in (
        {"BOOKREC_GATE_METRIC": "accuracy"},
        {"BOOKREC_GATE_TOLERANCE": 1.5},
        {"BOOKREC_GATE_READERS": 0},
    ):
        with pytest.raises(ValidationError, match=next(iter(bad))):
            gate_settings(**bad)
