"""RecommendationService, the one owner of a reader's list: the one-reader path, the bulk path
and training's precomputed lists agree, a write is never answered from a kept list, and a
worker scores no more lists at once than it is set to."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import numpy as np
import pytest
from sqlalchemy import Engine

from bookrec.db.session import unit_of_work
from bookrec.errors import NotFound
from bookrec.model_registry.registry import ModelRegistry
from bookrec.readers import repository
from bookrec.serving.engine import ServingEngine
from bookrec.serving.precomputed import PrecomputedLists
from bookrec.serving.service import Answer, ListRequest, Lookup, ReaderRef, RecommendationService
from bookrec.training.service import train
from tests.api.conftest import make_settings

USERS = list(range(1, 31))


@pytest.fixture
def service(imported: Engine, database_url: str, tmp_path: Path) -> Iterator[RecommendationService]:
    settings = make_settings(database_url, tmp_path / "var")
    train(
        imported,
        ModelRegistry(settings.models_dir),
        "als",
        {"factors": 8, "iterations": 3},
        settings=settings,
    )
    serving = ServingEngine.of(settings, imported)
    serving.load_once()
    yield serving.recommendations
    serving.stop()


def ids(service: RecommendationService, request: ListRequest, user: int) -> list[int]:
    answer = service.answer(request, ReaderRef(external_id=user))
    return [item.book_id for item in answer.listing().items]


def test_one_reader_bulk_and_precomputed_lists_agree(service: RecommendationService) -> None:
    plain = ListRequest("personal", 10)
    answers = [service.answer(plain, ReaderRef(external_id=user)) for user in USERS]
    assert {answer.source for answer in answers} == {"precomputed"}
    explained = ListRequest("personal", 10, explain=True)  # never precomputed: scored now
    scored = [ids(service, explained, user) for user in USERS]
    precomputed = [[item.book_id for item in answer.listing().items] for answer in answers]
    assert scored == precomputed
    version, book_ids, _, known = service.lists_for_users(np.asarray([*USERS, 10**9]), 10)
    assert version == answers[0].model_version and known.tolist() == [True] * 30 + [False]
    assert [row.tolist() for row in book_ids[:-1]] == scored
    cold = [item.book_id for item in service.answer(plain).listing().items]
    assert book_ids[-1].tolist() == cold  # an unknown reader: the cold-start list


def test_a_write_is_never_answered_from_a_kept_list(
    service: RecommendationService, imported: Engine
) -> None:
    plain = ListRequest("personal", 10)
    reader = ReaderRef(external_id=1)
    first = service.answer(plain, reader)
    assert first.source == "precomputed"
    top = first.listing().items[0].book_id
    with unit_of_work(imported) as session:
        reader_id = repository.reader_ids_by_external(session.connection(), [1])[1]
        repository.insert_shelf_item(session.connection(), reader_id, top, 1)
    second = service.answer(plain, reader)
    assert second.source == "miss"
    assert top not in [item.book_id for item in second.listing().items]
    assert service.answer(plain, reader).source == "hit"  # cached under the new version
    with pytest.raises(NotFound, match="user 999999"):
        service.answer(plain, ReaderRef(external_id=999999))


def test_lists_of_an_older_layout_are_not_used(tmp_path: Path) -> None:
    from bookrec.recsys.artifacts import write_artifact

    write_artifact(
        tmp_path / "lists",
        {"kind": "lists", "k": 2, "readers": 1},
        {
            "reader_ids": np.asarray([1]),
            "stamps": np.zeros((1, 6), dtype=np.int64),
            "book_ids": np.asarray([[1, 2]]),
            "scores": np.asarray([[1.0, 0.5]], dtype=np.float32),
        },
    )
    assert PrecomputedLists.load(tmp_path / "lists") is None


@pytest.mark.parametrize("scoring_threads", [1, 3])
def test_lists_are_scored_at_most_scoring_threads_at_once(
    service: RecommendationService, monkeypatch: pytest.MonkeyPatch, scoring_threads: int
) -> None:
    """Eight scored lists asked at once: the worker scores `scoring_threads` of them at a
    time, each still gets its own list."""
    service.scoring_threads = scoring_threads
    service._scoring = None
    running, most = 0, 0
    lock = threading.Lock()
    score = service.score

    def counted(lookup: Lookup) -> Answer:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        try:
            return score(lookup)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(service, "score", counted)
    explained = ListRequest("personal", 10, explain=True)  # never precomputed: scored now

    async def ask_all() -> list[Answer]:
        answers: list[Answer] = []

        async def ask(user: int) -> None:
            answers.append(await service.answer_async(explained, ReaderRef(external_id=user)))

        async with anyio.create_task_group() as group:
            for user in USERS[:8]:
                group.start_soon(ask, user)
        return answers

    answers = anyio.run(ask_all)
    assert most == scoring_threads
    assert len(answers) == 8 and {answer.source for answer in answers} == {"miss"}
