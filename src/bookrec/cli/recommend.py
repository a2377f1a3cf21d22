"""`bookrec recommend`: lists from the active model, for one reader or a file of them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bookrec.cli.common import console, engine, fail, out, settings, user_errors

if TYPE_CHECKING:
    from bookrec.serving.engine import LoadedModel


def _active_model() -> LoadedModel:
    from bookrec.serving.engine import load_version
    from bookrec.training.registry import Registry

    config = settings()
    version = Registry(engine(config), config.models_dir).active()
    if version is None:
        fail("no model is active: run `bookrec train` first")
    assert version is not None
    return load_version(version)


@user_errors
def recommend(
    user: int | None = typer.Argument(
        None, help="The reader's data set user id (ratings.csv user_id)"
    ),
    k: int = typer.Option(10, "--k", min=1, max=1000, help="How many books per reader"),
    batch: Path | None = typer.Option(None, "--batch", help="CSV with a user_id column"),
    out_path: Path | None = typer.Option(
        None, "--out", help="Where --batch writes user_id,book_id,rank,score"
    ),
    explain: bool = typer.Option(False, help="Show why each book is recommended"),
    diversity: float = typer.Option(
        0.0, min=0.0, max=1.0, help="0 = pure relevance; up to 1 = more varied (MMR)"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """Recommend books with the active model."""
    from rich.table import Table

    from bookrec.catalog.models import Book
    from bookrec.interactions import repository as activity
    from bookrec.recsys.data import ReaderHistory

    if batch is not None and user is None:
        if out_path is None:
            fail("--batch needs --out RECS.csv", code=2)
        _batch(batch, out_path, k)
        return
    if user is None or batch is not None:
        fail("give either a USER id or --batch USERS.csv", code=2)
    loaded = _active_model()
    db = engine()
    with db.connect() as connection:
        reader = activity.reader_ids_by_external(connection, [user]).get(user)
        if reader is None:
            console.print(f"user {user} is not known: showing the cold-start list", highlight=False)
            history, shelf = ReaderHistory.empty(), None
        else:
            history, shelf = (
                activity.history_of(connection, reader),
                activity.shelf_of(connection, reader),
            )
        picks = loaded.model.recommend(history, k, exclude=shelf, diversity=diversity)
        titles = {
            b.book_id: b
            for b in connection.execute(
                Book.__table__.select().where(Book.book_id.in_([p.book_id for p in picks]))
            )
        }
    rows = [
        {
            "rank": rank,
            "book_id": p.book_id,
            "title": titles[p.book_id].title,
            "authors": titles[p.book_id].authors,
            "score": round(p.score, 6),
            **({"reasons": loaded.model.explain(history, p.book_id)} if explain else {}),
        }
        for rank, p in enumerate(picks, start=1)
        if p.book_id in titles
    ]
    if as_json:
        out.print_json(
            json.dumps({"user_id": user, "model_version": loaded.version, "items": rows})
        )
        return
    table = Table(title=f"user {user} — model {loaded.version} ({loaded.algo})")
    for column in (
        "rank",
        "book_id",
        "title",
        "authors",
        "score",
        *(["reasons"] if explain else []),
    ):
        table.add_column(column)
    for row in rows:
        table.add_row(*("; ".join(v) if isinstance(v, list) else str(v) for v in row.values()))
    out.print(table)


def _batch(users_csv: Path, out_path: Path, k: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from bookrec.interactions import repository as activity
    from bookrec.serving.batch import batch_recommend
    from bookrec.training.dataset import load_interactions

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
    loaded = _active_model()
    db = engine()
    with db.connect() as connection:
        mapping = activity.reader_ids_by_external(connection, user_ids.tolist())
        interactions = load_interactions(connection, loaded.model.require_catalog().items)
        shelves = activity.all_shelves(connection)
    readers = np.asarray([mapping.get(int(u), -1) for u in user_ids], dtype=np.int64)
    book_ids, scores = batch_recommend(loaded.model, interactions, readers, k, shelves)
    found = book_ids >= 0
    ranks = np.broadcast_to(np.arange(1, book_ids.shape[1] + 1), book_ids.shape)
    out_user = np.broadcast_to(user_ids[:, None], book_ids.shape)[found]
    out_book, out_rank, out_score = book_ids[found], ranks[found], scores[found]
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
    unknown = int((readers < 0).sum())
    console.print(
        f"wrote {len(out_user):,} recommendations for {len(user_ids):,} readers to {out_path} "
        f"in {time.perf_counter() - started:.1f}s"
        + (f" ({unknown:,} unknown readers got the cold-start list)" if unknown else ""),
        highlight=False,
    )
