"""`bookrec recommend`: lists from the active model, for one reader or a file of them.

Both go through the serving engine's `RecommendationService`, as the API does: the same
model loading (a refused version falls back as in a worker) and the same lists.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bookrec.cli.common import console, engine, fail, out, print_table, settings, user_errors

if TYPE_CHECKING:
    from bookrec.serving.service import RecommendationService

SCORE_DECIMALS = 6  # as in the API's and the single reader's lists


@contextmanager
def _recommendations() -> Iterator[RecommendationService]:
    """The active model and the book cards, loaded once for this command."""
    from bookrec.serving.engine import ServingEngine

    config = settings()
    db = engine(config)
    try:
        serving = ServingEngine.of(config, db, experiments=False)
        serving.load_once()
        if serving.current() is None:
            fail("no model is active: run `bookrec train` first")
        try:
            yield serving.recommendations
        finally:
            serving.stop()
    finally:
        db.dispose()


@user_errors
def recommend(
    user: int | None = typer.Argument(
        None, help="The reader's data set user id (ratings.csv user_id)"
    ),
    k: int = typer.Option(10, "--k", min=1, max=100, help="How many books per reader (≤ 100)"),
    batch: Path | None = typer.Option(None, "--batch", help="CSV with a user_id column"),
    out_path: Path | None = typer.Option(
        None, "--out", help="Where --batch writes user_id,book_id,rank,score"
    ),
    explain: bool = typer.Option(False, help="Show why each book is recommended"),
    diversity: float = typer.Option(
        0.0, min=0.0, max=1.0, help="0 = pure relevance; up to 1 = more varied (MMR)"
    ),
    allow_unknown: bool = typer.Option(
        False, "--allow-unknown", help="For a reader the data does not know: the cold-start list"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """Recommend books with the active model."""
    if batch is not None and user is None:
        if out_path is None:
            fail("--batch needs --out RECS.csv", code=2)
        _batch(batch, out_path, k)
        return
    if user is None or batch is not None:
        fail("give either a USER id or --batch USERS.csv", code=2)
    _one(user, k, explain, diversity, as_json, allow_unknown)


def _one(
    user: int, k: int, explain: bool, diversity: float, as_json: bool, allow_unknown: bool
) -> None:
    from bookrec.errors import NotFound
    from bookrec.serving.service import ListRequest, ReaderRef

    request = ListRequest("personal", k, explain=explain, diversity=diversity)
    with _recommendations() as recommendations:
        try:
            answer = recommendations.answer(request, ReaderRef(external_id=user))
        except NotFound:
            if not allow_unknown:
                fail(
                    f"user {user} is not in the data: check the id (ratings.csv user_id), or "
                    "pass --allow-unknown for the list a new reader gets",
                    field="user",
                )
            console.print(f"user {user} is not known: showing the cold-start list", highlight=False)
            answer = recommendations.answer(request)
        algo = recommendations.model().algo
    items = answer.listing().items
    if as_json:
        rows = [
            {
                "rank": rank,
                **item.model_dump(include={"book_id", "title", "authors", "score"}),
                **({"reasons": item.reasons} if explain else {}),
            }
            for rank, item in enumerate(items, start=1)
        ]
        out.print_json(
            json.dumps({"user_id": user, "model_version": answer.model_version, "items": rows})
        )
        return
    table = [
        [
            str(rank),
            str(item.book_id),
            item.title,
            item.authors,
            f"{item.score:.4f}",
            *(["; ".join(item.reasons or [])] * explain),
        ]
        for rank, item in enumerate(items, start=1)
    ]
    print_table(
        ["rank", "book_id", "title", "authors", "score", *(["reasons"] * explain)],
        table,
        title=f"user {user} — model {answer.model_version} ({algo})",
        right_from=len(table[0]) if table else 0,  # left-aligned, as a list reads
    )


def _batch(users_csv: Path, out_path: Path, k: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    started = time.perf_counter()
    try:
        table = pacsv.read_csv(
            users_csv,
            convert_options=pacsv.ConvertOptions(
                include_columns=["user_id"], column_types={"user_id": pa.int64()}
            ),
        )
    except (pa.ArrowInvalid, FileNotFoundError, KeyError) as exc:
        fail(f"{users_csv}: needs a user_id column of integers ({exc})")
    user_ids = table.column("user_id").to_numpy()
    with _recommendations() as recommendations:
        _, book_ids, scores, known = recommendations.lists_for_users(user_ids, k)
    found = book_ids >= 0
    ranks = np.broadcast_to(np.arange(1, book_ids.shape[1] + 1), book_ids.shape)
    out_user = np.broadcast_to(user_ids[:, None], book_ids.shape)[found]
    out_book, out_rank = book_ids[found], ranks[found]
    out_score = np.round(scores[found].astype(np.float64), SCORE_DECIMALS)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = out_path.with_name(out_path.name + ".tmp")
    with temporary.open("wb") as handle:
        handle.write(b"user_id,book_id,rank,score\n")
        pacsv.write_csv(
            pa.table(
                {
                    "user_id": pa.array(out_user, pa.int64()),
                    "book_id": pa.array(out_book, pa.int64()),
                    "rank": pa.array(out_rank, pa.int32()),
                    "score": pa.array(out_score, pa.float64()),
                }
            ),
            handle,
            write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"),
        )
    temporary.replace(out_path)
    unknown = int((~known).sum())
    console.print(
        f"wrote {len(out_user):,} recommendations for {len(user_ids):,} readers to {out_path} "
        f"in {time.perf_counter() - started:.1f}s"
        + (f" ({unknown:,} unknown readers got the cold-start list)" if unknown else ""),
        highlight=False,
    )
