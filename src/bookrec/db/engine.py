"""Engines for SQLite (embedded) and PostgreSQL (production), with the settings bookrec needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

#: Seconds to wait for PostgreSQL to accept a connection before the request is answered 503.
CONNECT_TIMEOUT_SECONDS = 5
#: Seconds a request waits for a free connection of its worker's pool before 503.
POOL_TIMEOUT_SECONDS = 10
#: SQLite result codes meaning "busy or not reachable for now", not a wrong statement.
_SQLITE_AWAY = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_FULL")


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (API workers) run while a writer (import, training job) works;
    # foreign keys are off by default in SQLite and must be asked for on every connection.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the per-backend settings bookrec relies on.

    SQL parameters are kept out of logs and error messages (they carry emails, addresses,
    password hashes) unless `hide_parameters=False` is passed.
    """
    kwargs.setdefault("hide_parameters", True)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    # a connection that died with a restart is noticed at checkout and the pool refilled
    kwargs.setdefault("pool_pre_ping", True)
    if "poolclass" not in kwargs:  # a NullPool (tests, one-shot commands) has no checkout wait
        kwargs.setdefault("pool_timeout", POOL_TIMEOUT_SECONDS)
    connect_args = kwargs.setdefault("connect_args", {})
    connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
    return create_engine(url, **kwargs)


def unavailable_reason(exc: BaseException) -> str | None:
    """Why `exc` means the database is away for now (unreachable, restarting, out of
    connections, busy), in a few words fit for a client (no host or driver detail); None for
    any other error (a bug, a bad statement).
    """
    if isinstance(exc, sa_exc.TimeoutError):
        return "no connection became free in time"
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    sqlite_code = str(getattr(exc.orig, "sqlite_errorname", None) or "")
    if sqlite_code:
        if sqlite_code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return "busy with another write"
        if sqlite_code.startswith(_SQLITE_AWAY):
            return "its file cannot be read or written"
    if sqlstate.startswith("53"):
        return "too many connections" if sqlstate == "53300" else "out of resources"
    if sqlstate.startswith("57P"):
        return "shutting down or starting up"
    if (
        exc.connection_invalidated
        or sqlstate.startswith("08")
        or (
            not sqlstate
            and not sqlite_code
            and isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError))
        )
    ):
        return "the connection failed or was lost"
    return None
