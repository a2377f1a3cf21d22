"""Import every ORM model so `Base.metadata` is complete (for Alembic and tests)."""

from bookrec.accounts.api_keys import ApiKey
from bookrec.accounts.audit import AuditEvent
from bookrec.accounts.models import Reader, RefreshToken, User
from bookrec.catalog.models import Author, Book, BookAuthor, BookTag, Tag
from bookrec.db.base import Base
from bookrec.interactions.models import Dataset, Event, Rating, ShelfItem
from bookrec.jobs.models import TrainingJob
from bookrec.training.models import ModelActivation, ModelVersionRow

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Author",
    "Base",
    "Book",
    "BookAuthor",
    "BookTag",
    "Dataset",
    "Event",
    "ModelActivation",
    "ModelVersionRow",
    "Rating",
    "Reader",
    "RefreshToken",
    "ShelfItem",
    "Tag",
    "TrainingJob",
    "User",
]
