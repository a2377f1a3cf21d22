"""Search benchmark: latency of `GET /books?q=` and `/books/suggest` at 10k and 100k books.

What is measured
----------------
A synthetic catalogue (always labelled synthetic) is generated from the bundled goodbooks-10k
books.csv: titles of 2-6 words drawn from the words of the real titles with their real
frequencies, authors from the real first and last names, a few tag names from tags.csv (no
book-tag links are real: these are drawn too). It is imported with `import_directory` (the
same path `bookrec data import` takes, so the search indexes are filled by the migration's
triggers / generated column) into a fresh migrated SQLite file and PostgreSQL database.

Then, in this process, `catalog.service.search_books` (first page of 20, with the total) and
`suggest_books` (10 titles) run over a fixed, seeded set of queries drawn from the catalogue:

* words: two words of one book's title;
* author: one author's last name;
* typo: a title word of 6+ letters with one letter replaced (no book has the misspelt word,
  so this is the trigram path);
* suggest: one title word and the first three letters of the next (type-ahead).

The floor, measured in the same run on the same session, is the cheapest page a catalogue can
answer: the 20 books of a fixed id list loaded by primary key. Each query kind reports the
median and the 95th percentile in milliseconds and its median ratio to the floor's median.

Run: `python -m benchmarks.search_bench [--sizes 10000 100000] [--queries 200]`
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, machine_info, postgres_scratch

DEMO = ROOT / "src" / "bookrec" / "demo" / "goodbooks-10k"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
WORD = re.compile(r"[A-Za-z]{2,}")


def synthetic_catalogue(directory: Path, size: int, seed: int) -> list[dict[str, Any]]:
    """books.csv and tags.csv of `size` synthetic books; returns the rows written."""
    rng = random.Random(seed)
    with (DEMO / "books.csv").open(newline="", encoding="utf-8") as handle:
        real = list(csv.DictReader(handle))
    words = Counter(w.lower() for row in real for w in WORD.findall(row["title"]))
    vocabulary, weights = zip(*words.items(), strict=True)
    names = [n.split() for row in real for n in row["authors"].split(", ") if " " in n]
    firsts = sorted({n[0] for n in names})
    lasts = sorted({n[-1] for n in names})
    with (DEMO / "tags.csv").open(newline="", encoding="utf-8") as handle:
        tags = [row["tag_name"] for row in csv.DictReader(handle)][1000:]
    rows = []
    for book_id in range(1, size + 1):
        title = " ".join(rng.choices(vocabulary, weights, k=rng.randint(2, 6))).title()
        rows.append(
            {
                "book_id": book_id,
                "title": title,
                "authors": f"{rng.choice(firsts)} {rng.choice(lasts)}",
                "original_publication_year": rng.randint(1850, 2020),
                "language_code": "eng",
                "ratings_count": int(rng.paretovariate(1.2) * 10),
            }
        )
    with (directory / "books.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with (directory / "tags.csv").open("w", newline="", encoding="utf-8") as handle:
        handle.write("tag_id,tag_name\n")
        handle.writelines(f"{i},{name}\n" for i, name in enumerate(tags[:500]))
    return rows


def queries(rows: list[dict[str, Any]], count: int, seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed + 1)
    known = {w for row in rows for w in row["title"].lower().split()}
    picked = rng.sample(rows, count)
    result: dict[str, list[str]] = {"words": [], "author": [], "typo": [], "suggest": []}
    for row in picked:
        title = row["title"].split()
        result["words"].append(" ".join(title[:2]))
        result["author"].append(row["authors"].split()[-1])
        result["suggest"].append(f"{title[0]} {title[1][:3]}")
        long_words = [w for w in title if len(w) >= 6] or [max(title, key=len)]
        word = rng.choice(long_words).lower()
        for _ in range(20):
            position = rng.randrange(1, len(word))
            typo = word[:position] + rng.choice("aeioukrst") + word[position + 1 :]
            if typo not in known:
                break
        result["typo"].append(typo)
    return result


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def measure(url: str, rows: list[dict[str, Any]], count: int, seed: int) -> dict[str, Any]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from bookrec.catalog import service
    from bookrec.catalog.models import Book
    from bookrec.db.engine import make_engine

    engine = make_engine(url)
    asked = queries(rows, count, seed)
    page = random.Random(seed).sample(range(1, len(rows) + 1), 20)
    found: dict[str, list[int]] = {}
    result: dict[str, Any] = {}
    with Session(engine) as session:

        def floor() -> object:
            return session.scalars(select(Book).where(Book.book_id.in_(page))).all()

        for _ in range(20):  # warm the caches and the connection
            floor()
            service.search_books(session, service.BookQuery(q=asked["words"][0]), 0, 20)
        samples: dict[str, list[float]] = {"floor": []}
        for index in range(count):
            samples["floor"].append(timed(floor))
            for kind in ("words", "author", "typo"):
                q = asked[kind][index]
                hits: list[Any] = []
                samples.setdefault(kind, []).append(
                    timed(
                        lambda q=q, hits=hits: hits.extend(  # type: ignore[misc]
                            service.search_books(session, service.BookQuery(q=q), 0, 20)[0]
                        )
                    )
                )
                found.setdefault(kind, []).append(len(hits))
            q = asked["suggest"][index]
            samples.setdefault("suggest", []).append(
                timed(lambda q=q: service.suggest_books(session, q, 10))  # type: ignore[misc]
            )
    engine.dispose()
    floor_median = statistics.median(samples["floor"])
    for kind, values in samples.items():
        ordered = sorted(values)
        result[kind] = {
            "median_ms": round(statistics.median(values), 2),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
            "ratio_to_floor": round(statistics.median(values) / floor_median, 1),
        }
        if kind in found:
            result[kind]["queries_with_hits"] = sum(1 for n in found[kind] if n)
    result["queries_per_kind"] = count
    return result


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    from bookrec.db.engine import make_engine
    from bookrec.importing.importer import import_directory
    from bookrec.schema.migrate import upgrade

    report: dict[str, Any] = {"results": []}
    with (
        (
            postgres_scratch(args.postgres_url) if "postgresql" in args.backends else nullcontext()
        ) as pg,
        tempfile.TemporaryDirectory(prefix="bookrec-search-bench-") as work,
    ):
        report["machine"] = machine_info(pg.server_version() if pg else None)
        for size in args.sizes:
            directory = Path(work) / f"catalogue-{size}"
            directory.mkdir()
            rows = synthetic_catalogue(directory, size, args.seed)
            for backend in args.backends:
                if backend == "sqlite":
                    url = f"sqlite:///{Path(work) / f'search-{size}.sqlite3'}"
                else:
                    assert pg is not None
                    _, url = pg.create()
                upgrade(url)
                engine = make_engine(url)
                started = time.perf_counter()
                import_directory(engine, directory)
                imported = time.perf_counter() - started
                engine.dispose()
                figures = measure(url, rows, args.queries, args.seed)
                entry = {"books": size, "backend": backend, "import_s": round(imported, 1)}
                report["results"].append({**entry, **figures})
                print(json.dumps(report["results"][-1]), file=sys.stderr, flush=True)
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200, help="queries of each kind")
    parser.add_argument(
        "--backends", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"]
    )
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BOOKREC_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="an admin URL of the PostgreSQL server that scratch databases are created on",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    print(json.dumps(benchmark(parse_args(argv)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
