"""The whole database schema: every ORM model, imported here, and the migrations that build it.

Every entry point (the API app, the `bookrec` command, Alembic's environment) imports this
package, so `Base.metadata` holds every table and any mapper can be configured whatever a
command touches first. `tests/test_architecture.py` checks that it lists every model and
that the migrations build exactly these tables.
"""

from bookrec.accounts.api_keys import ApiKey
from bookrec.accounts.audit import AuditEvent
from bookrec.accounts.models import RefreshToken, User
from bookrec.catalog.models import (
    SEARCH_COLUMNS,
    SEARCH_INDEXES,
    SEARCH_TABLE_PREFIXES,
    Author,
    Book,
    BookAuthor,
    BookTag,
    Tag,
)
from bookrec.datasets.models import Dataset
from bookrec.db.base import Base
from bookrec.experiments.models import Experiment, ExperimentVariant, Exposure
from bookrec.jobs.models import TrainingJob
from bookrec.model_registry.models import ModelActivation, ModelVersionRow
from bookrec.readers.models import Event, Rating, Reader, ShelfItem


def mapped_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's `include_name`: False for the search structures migrations make by hand
    (so that comparing the models with the database leaves them out)."""
    if name is None:
        return True
    if type_ == "table":
        return not name.startswith(SEARCH_TABLE_PREFIXES)
    if type_ == "column":
        return name not in SEARCH_COLUMNS
    if type_ == "index":
        return name not in SEARCH_INDEXES
    return True


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
    "Experiment",
    "ExperimentVariant",
    "Exposure",
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
