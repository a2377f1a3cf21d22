"""Counts of what the database holds, for the admin overview."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bookrec.accounts.models import User
from bookrec.catalog.models import Book
from bookrec.readers.models import Rating, Reader


def counts(session: Session) -> dict[str, int]:
    """Books, readers, ratings and accounts, one query each."""
    tables = {"books": Book, "readers": Reader, "ratings": Rating, "accounts": User}
    return {
        name: int(session.scalar(select(func.count()).select_from(model)) or 0)
        for name, model in tables.items()
    }
