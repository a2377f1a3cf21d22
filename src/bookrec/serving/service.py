"""Turn model output into API answers: filters in, books with titles and reasons out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from bookrec.catalog import service as catalog
from bookrec.errors import InvalidInput
from bookrec.recsys.base import Recommendation, Recommender
from bookrec.recsys.data import Filters, ReaderHistory
from bookrec.serving.schemas import RecommendedBook


@dataclass(frozen=True)
class FilterRequest:
    """Filters as a client names them (tag and author names)."""

    tags: tuple[str, ...] = ()
    language: str | None = None
    year_min: int | None = None
    year_max: int | None = None
    exclude_authors: tuple[str, ...] = ()

    def resolve(self, session: Session) -> Filters:
        if (
            self.year_min is not None
            and self.year_max is not None
            and self.year_min > self.year_max
        ):
            raise InvalidInput(
                f"year_min ({self.year_min}) is after year_max ({self.year_max})", field="year_min"
            )
        return Filters(
            tags=tuple(catalog.tag_ids_named(session, self.tags)) if self.tags else (),
            language=self.language,
            year_min=self.year_min,
            year_max=self.year_max,
            exclude_authors=tuple(catalog.author_ids_named(session, self.exclude_authors)),
        )


def describe(
    session: Session,
    model: Recommender,
    recommendations: Sequence[Recommendation],
    history: ReaderHistory,
    explain: bool,
) -> list[RecommendedBook]:
    """Attach titles, authors and (optionally) reasons to a model's list, keeping its order."""
    books = catalog.books_by_id(session, [r.book_id for r in recommendations])
    items = []
    for recommendation in recommendations:
        book = books.get(recommendation.book_id)
        if book is None:  # deleted since the model was trained
            continue
        items.append(
            RecommendedBook(
                book_id=book.book_id,
                title=book.title,
                authors=book.authors,
                score=round(recommendation.score, 6),
                image_url=book.image_url,
                reasons=model.explain(history, book.book_id) if explain else None,
            )
        )
    return items
