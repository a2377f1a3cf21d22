"""Units of work: the one way bookrec opens a session and a transaction.

`unit_of_work` commits when its block ends normally and rolls back on any exception, except
a `BookrecError` raised with `keep_changes=True`: a refusal whose own writes must last (the
audit event of a failed login, a revoked token family, a model version marked refused).
Callers pass the session down; services and repositories never commit.

Work that must only happen once a transaction is durable (announcing an activation to other
workers) is queued with `after_commit`; what must be undone if it rolls back (a model
directory renamed into place) with `after_rollback`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import structlog
from sqlalchemy import Connection, Engine, Table, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bookrec.db.engine import unavailable_reason
from bookrec.errors import BookrecError, DatabaseUnavailable

log = structlog.get_logger(__name__)

SessionFactory = sessionmaker[Session]

_AFTER_COMMIT = "bookrec.after_commit"
_AFTER_ROLLBACK = "bookrec.after_rollback"


def make_session_factory(engine: Engine) -> SessionFactory:
    """Sessions on `engine` whose objects stay readable after their transaction commits."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def unit_of_work(bind: Engine | SessionFactory) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error (see the module docstring).

    The database being away (unreachable, restarting, out of connections) is raised as
    `DatabaseUnavailable`, which the API answers 503 with `Retry-After`.
    """
    sessions = make_session_factory(bind) if isinstance(bind, Engine) else bind
    try:
        with sessions() as session:
            session.begin()
            try:
                yield session
            except BookrecError as exc:
                if exc.keep_changes:
                    session.commit()
                else:
                    session.rollback()
                raise
            except BaseException:
                session.rollback()
                raise
            session.commit()
    except SQLAlchemyError as exc:
        reason = unavailable_reason(exc)
        if reason is None:
            raise
        raise DatabaseUnavailable(reason) from exc


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's transaction commits (never if it rolls back)."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def after_rollback(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` if the session's transaction rolls back (never if it commits)."""
    session.info.setdefault(_AFTER_ROLLBACK, []).append(callback)


def _run(callbacks: list[Callable[[], None]], when: str) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception as exc:  # the transaction is over: report, never undo it
            log.error("transaction_hook_failed", when=when, error=f"{type(exc).__name__}: {exc}")


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    session.info.pop(_AFTER_ROLLBACK, None)
    _run(session.info.pop(_AFTER_COMMIT, []), "after_commit")


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)
    _run(session.info.pop(_AFTER_ROLLBACK, []), "after_rollback")


def serialise(session: Session, table: Table) -> None:
    """Make concurrent units of work that change `table` this way take turns, from here on.

    PostgreSQL: a table lock that conflicts only with itself and with writes to the table
    (reads go on). SQLite: its one write lock, taken now rather than at the first write, so
    everything this transaction reads next is already what it will write over.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"LOCK TABLE {table.name} IN SHARE ROW EXCLUSIVE MODE"))
    else:
        # a write that matches no row still opens SQLite's write transaction
        session.execute(table.delete().where(text("0 = 1")))


@contextmanager
def bulk_unit_of_work(engine: Engine) -> Iterator[Connection]:
    """One transaction on a connection tuned for writing millions of rows (the importer).

    SQLite skips per-row foreign-key checks (the importer checks every key itself) and
    caches more pages. Both pragmas only take effect outside a transaction, so they are set
    before it begins and restored after it ends.
    """
    with engine.connect() as connection:
        # on the driver's connection: SQLAlchemy's would begin a transaction with them
        raw = (
            connection.connection.driver_connection if connection.dialect.name == "sqlite" else None
        )
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=OFF")
            raw.execute("PRAGMA cache_size=-262144")
        try:
            with connection.begin():
                yield connection
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")
                raw.execute("PRAGMA cache_size=-2000")
