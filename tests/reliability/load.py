"""Readers rating, shelving and reading in a loop, every answer recorded with its time.

Each reader remembers, per book, the values the database may hold: the last write answered
2xx, plus any later write whose outcome is unknown (503 or a dropped connection: possibly
committed). A write acknowledged and then missing from the database is a lost write.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field

import httpx

API = "/api/v1"
PASSWORD = "a sturdy reliability passphrase 7"


@dataclass
class Outcome:
    """One request: when it ran, what it was, what came back."""

    started: float
    ended: float
    kind: str
    status: int | None  # None: no HTTP answer (connection refused, reset, timed out)
    worker: str | None = None  # the answering worker's request-id prefix
    retry_after: str | None = None
    problem: str | None = None
    error: str | None = None


@dataclass
class Reader:
    email: str
    reader_id: int = 0
    token: str = ""
    #: book id -> ratings the database may hold for it (the acknowledged one first)
    ratings: dict[int, set[int]] = field(default_factory=dict)
    acknowledged_ratings: dict[int, int] = field(default_factory=dict)
    #: books whose shelving was acknowledged
    shelved: set[int] = field(default_factory=set)


def worker_of(response: httpx.Response) -> str | None:
    request_id = response.headers.get("x-request-id", "")
    return request_id[:20] or None  # api.middleware: 20 hex digits per process, then a counter


class Load:
    """`readers` threads, each with its own keep-alive connection, until `stop()`."""

    def __init__(self, base_url: str, readers: int, books: int, seed: int = 22) -> None:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # thousands of requests
        self.base_url = base_url
        self.books = books
        self.readers = [Reader(f"reader{n}@reliability.example.org") for n in range(readers)]
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._seed = seed

    def sign_up(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            for reader in self.readers:
                body = {"email": reader.email, "password": PASSWORD}
                created = client.post(f"{API}/auth/register", json=body)
                assert created.status_code == 201, created.text
                reader.reader_id = int(created.json()["reader_id"])
                login = client.post(f"{API}/auth/login", json=body)
                assert login.status_code == 200, login.text
                reader.token = login.json()["access_token"]

    def start(self) -> None:
        for index, reader in enumerate(self.readers):
            thread = threading.Thread(
                target=self._run, args=(reader, random.Random(self._seed + index)), daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _record(self, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)

    def _request(
        self, client: httpx.Client, kind: str, method: str, path: str, **kwargs: object
    ) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError as exc:
            self._record(Outcome(started, time.monotonic(), kind, None, error=repr(exc)))
            return None
        problem = None
        if response.headers.get("content-type", "").startswith("application/problem+json"):
            problem = str(response.json().get("type", "")).rsplit("/", 1)[-1]
        self._record(
            Outcome(
                started,
                time.monotonic(),
                kind,
                response.status_code,
                worker_of(response),
                response.headers.get("retry-after"),
                problem,
            )
        )
        return response

    def _run(self, reader: Reader, rng: random.Random) -> None:
        headers = {"Authorization": f"Bearer {reader.token}"}
        with httpx.Client(base_url=self.base_url, timeout=20, headers=headers) as client:
            while not self._stop.is_set():
                book_id = rng.randint(1, self.books)
                stars = rng.randint(1, 5)
                rated = self._request(
                    client, "rate", "PUT", f"{API}/me/ratings/{book_id}", json={"rating": stars}
                )
                if rated is not None and rated.status_code in (200, 201):
                    reader.ratings[book_id] = {stars}
                    reader.acknowledged_ratings[book_id] = stars
                elif book_id in reader.ratings and (rated is None or rated.status_code >= 500):
                    reader.ratings[book_id].add(stars)  # may have landed: either value is kept
                shelf_book = rng.randint(1, self.books)
                shelved = self._request(client, "shelve", "PUT", f"{API}/me/shelf/{shelf_book}")
                if shelved is not None and shelved.status_code in (200, 201):
                    reader.shelved.add(shelf_book)
                self._request(client, "my-ratings", "GET", f"{API}/me/ratings?size=5")
                self._request(client, "for-me", "GET", f"{API}/recommendations/me?k=5")
                self._request(client, "popular", "GET", f"{API}/recommendations/popular?k=5")
                self._stop.wait(0.02)
