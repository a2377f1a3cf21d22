"""Model versions: rows in the database, artifacts on local disk under `root/<version>/`.

The database is the truth: `model_versions` holds what each version is (algorithm, params,
data snapshot, metrics, gate decision, sha256 of every artifact file) and its status;
`model_activations` logs every change of the active version, which is what rollback reads.
At most one version is active, and the database enforces it (a partial unique index).

A version directory holds `model/` (the trained recommender), `popular/` and `trending/`
(the popularity fallbacks every version carries). It is assembled in a hidden staging
directory and renamed into place inside the transaction that inserts its row, so a crash
at any point never registers half a model: either the row commits after the rename, or
nothing is registered and the leftover directory is swept up by a later commit.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from bookrec.errors import Conflict, NotFound
from bookrec.recsys.artifacts import ArtifactError, sha256_of
from bookrec.training.models import ModelActivation, ModelVersionRow

if TYPE_CHECKING:
    from bookrec.config import Settings

log = structlog.get_logger(__name__)

Notifier = Callable[[str], None]

STAGING_PREFIX = ".staging-"
#: Staging and orphaned version directories older than this are removed on the next commit.
STALE_SECONDS = 3600.0
_VERSION_RE = re.compile(r"^[1-9]\d{0,9}$")
_ATTEMPTS = 5


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: its number, where its artifacts are, and what it is."""

    version: str
    path: Path
    info: dict[str, Any]

    @property
    def algo(self) -> str:
        return str(self.info.get("algo", "?"))

    @property
    def status(self) -> str:
        return str(self.info.get("status", "?"))

    def to_dict(self) -> dict[str, Any]:
        """The public description (CLI `--json`, admin API): JSON-ready values only."""
        info = self.info
        return {
            "version": int(self.version),
            "algo": self.algo,
            "status": self.status,
            "status_reason": info.get("status_reason"),
            "metrics": info.get("metrics", {}),
            "artifact_uri": info.get("artifact_uri"),
            "params": info.get("params", {}),
            "data": info.get("data", {}),
            "gate": info.get("gate", {}),
            "created_at": info.get("created_at"),
            "activated_at": info.get("activated_at"),
            "checksums": info.get("checksums", {}),
            "timings": info.get("timings", {}),
        }


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; we always store UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def _artifacts(checksums: dict[str, str]) -> dict[str, dict[str, str]]:
    """{subdirectory: {array file: sha256}}, as each artifact's manifest lists them."""
    grouped: dict[str, dict[str, str]] = {}
    for relative, digest in checksums.items():
        parts = PurePosixPath(relative).parts
        if len(parts) == 2 and parts[1].endswith(".npy"):
            grouped.setdefault(parts[0], {})[parts[1]] = digest
    return grouped


def _version_number(version: str | int) -> int:
    text = str(version).strip()
    if not _VERSION_RE.match(text):
        raise NotFound("model version", version)
    return int(text)


def _collided(exc: IntegrityError | OperationalError) -> bool:
    """A concurrent writer got there first (worth another try), not a broken database."""
    if isinstance(exc, IntegrityError):
        return True
    message = str(exc.orig).lower()
    return any(word in message for word in ("locked", "deadlock", "serializ", "busy"))


def _checksums(directory: Path) -> dict[str, str]:
    """sha256 of every file under `directory`, by path relative to it (POSIX separators)."""
    found = {}
    for path in sorted(directory.rglob("*")):
        if path.is_symlink():
            raise ArtifactError(f"{path} is a symbolic link; artifacts are plain files")
        if path.is_file():
            found[path.relative_to(directory).as_posix()] = sha256_of(path)
    return found


class Registry:
    """Model versions in the database, artifacts under `root`; see the module docstring."""

    def __init__(self, engine: Engine, root: Path, notifier: Notifier | None = None) -> None:
        self.engine = engine
        self.root = Path(root)
        self.notifier = notifier

    # -- reading --------------------------------------------------------------------------

    def _model(self, row: ModelVersionRow) -> ModelVersion:
        version = str(row.version)
        checksums = dict(row.checksums or {})
        info: dict[str, Any] = {
            "version": version,
            "algo": row.algo,
            "params": row.params or {},
            "data": row.data or {},
            "metrics": row.metrics or {},
            "gate": row.gate or {},
            "artifact_uri": row.artifact_uri,
            "checksums": checksums,
            "artifacts": _artifacts(checksums),
            "status": row.status,
            "status_reason": row.status_reason,
            "created_at": _iso(row.created_at),
            "activated_at": _iso(row.activated_at),
            "timings": row.timings or {},
        }
        return ModelVersion(version, self.root / version, info)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    def active_version(self) -> str | None:
        """The active version's number, or None: one indexed SELECT (API workers poll it)."""
        with self.engine.connect() as connection:
            found = connection.execute(
                select(ModelVersionRow.version).where(ModelVersionRow.status == "active")
            ).scalar_one_or_none()
        return None if found is None else str(found)

    def active(self) -> ModelVersion | None:
        with self._session() as session:
            row = session.scalars(
                select(ModelVersionRow).where(ModelVersionRow.status == "active")
            ).one_or_none()
            return None if row is None else self._model(row)

    def get(self, version: str | int) -> ModelVersion:
        """One version; raises NotFound."""
        number = _version_number(version)
        with self._session() as session:
            row = session.get(ModelVersionRow, number)
            if row is None:
                raise NotFound("model version", version)
            return self._model(row)

    def versions(self) -> list[ModelVersion]:
        """Every registered version, oldest first."""
        with self._session() as session:
            rows = session.scalars(select(ModelVersionRow).order_by(ModelVersionRow.version))
            return [self._model(row) for row in rows]

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(select(func.count()).select_from(ModelVersionRow)).one()[0]
            )

    def page(self, offset: int = 0, limit: int = 20) -> list[ModelVersion]:
        """Versions newest first, `limit` of them from `offset` (for paginated listings)."""
        with self._session() as session:
            rows = session.scalars(
                select(ModelVersionRow)
                .order_by(ModelVersionRow.version.desc())
                .offset(max(offset, 0))
                .limit(max(limit, 0))
            )
            return [self._model(row) for row in rows]

    def serving_candidates(self) -> list[ModelVersion]:
        """Versions that may serve, in the order to try them: the active one, then the rest
        (retired or candidate) newest first; never a refused one."""
        with self._session() as session:
            rows = session.scalars(
                select(ModelVersionRow)
                .where(ModelVersionRow.status != "refused")
                .order_by(ModelVersionRow.version.desc())
            ).all()
            ordered = sorted(rows, key=lambda row: row.status != "active")  # stable
            return [self._model(row) for row in ordered]

    def verify(self, version: str | int) -> ModelVersion:
        """Check every recorded artifact file exists and matches its sha256.

        Raises `ArtifactError` naming the first missing or altered file (NotFound for an
        unknown version).
        """
        chosen = self.get(version)
        self._verify_files(chosen.path, chosen.info["checksums"])
        return chosen

    @staticmethod
    def _verify_files(directory: Path, checksums: dict[str, str]) -> None:
        if not checksums:
            raise ArtifactError(f"no artifact checksums are recorded for {directory}")
        if not directory.is_dir():
            raise ArtifactError(f"{directory} is missing")
        for relative, expected in checksums.items():
            parts = PurePosixPath(relative).parts
            if not parts or PurePosixPath(relative).is_absolute() or ".." in parts:
                raise ArtifactError(
                    f"recorded artifact path {relative!r} is not inside {directory}"
                )
            path = directory.joinpath(*parts)
            if not path.is_file():
                raise ArtifactError(f"{path} is missing")
            if sha256_of(path) != expected:
                raise ArtifactError(f"{path} fails its sha256 checksum")

    # -- changing the active version -----------------------------------------------------

    def _notify(self, version: str) -> None:
        if self.notifier is None:
            return
        try:
            self.notifier(version)
        except Exception as exc:  # a broadcast is best effort: workers also poll
            log.warning("model_notify_failed", version=version, error=str(exc))

    def _retrying(self, change: Callable[[Session], ModelVersion | None]) -> ModelVersion | None:
        """Run `change` in one transaction, again when a concurrent change collided with it."""
        for attempt in range(_ATTEMPTS):
            try:
                with self._session() as session:
                    return change(session)
            except (IntegrityError, OperationalError) as exc:
                if not _collided(exc):
                    raise
                if attempt == _ATTEMPTS - 1:
                    raise Conflict(
                        f"the active model changed concurrently; try again ({exc.orig})"
                    ) from None
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    @staticmethod
    def _locked(session: Session, number: int) -> ModelVersionRow:
        row = session.get(ModelVersionRow, number, with_for_update=True)
        if row is None:
            raise NotFound("model version", number)
        return row

    @staticmethod
    def _current(session: Session) -> ModelVersionRow | None:
        return session.scalars(
            select(ModelVersionRow).where(ModelVersionRow.status == "active").with_for_update()
        ).one_or_none()

    def _switch(
        self,
        session: Session,
        row: ModelVersionRow,
        action: str,
        actor: str | None,
        previous: ModelVersionRow | None,
        reason: str | None = None,
    ) -> None:
        """Make `row` active in this transaction: the previous one retires, the log records it."""
        previous_number = None
        if previous is not None and previous.version != row.version:
            previous_number = previous.version
            if previous.status == "active":
                previous.status = "retired"
                session.flush()  # free the one-active slot before taking it
        row.status = "active"
        row.status_reason = reason
        row.activated_at = datetime.now(UTC)
        session.add(
            ModelActivation(
                version=row.version,
                previous_version=previous_number,
                action=action,
                actor=None if actor is None else actor[:255],
            )
        )
        session.flush()

    def activate(self, version: str | int, actor: str | None = None) -> ModelVersion:
        """Make `version` the active one, in one transaction, after verifying its artifacts.

        A version whose artifacts fail verification is marked refused and not activated
        (Conflict); a refused version is activated again only if it now verifies.
        """
        number = _version_number(version)
        chosen = self.get(number)
        try:
            self._verify_files(chosen.path, chosen.info["checksums"])
        except ArtifactError as exc:
            if chosen.status != "refused":
                self.refuse(number, f"artifact check failed: {exc}")
            raise Conflict(
                f"model version {number} cannot be activated: its artifacts fail verification "
                f"({exc}); it is refused"
            ) from None

        changed: list[bool] = []

        def change(session: Session) -> ModelVersion:
            changed.clear()
            row = self._locked(session, number)
            if row.status == "active":
                return self._model(row)
            reason = "verified again" if row.status == "refused" else None
            self._switch(session, row, "activate", actor, self._current(session), reason)
            changed.append(True)
            return self._model(row)

        activated = self._retrying(change)
        assert activated is not None
        if changed:
            log.info("model_activated", version=activated.version, actor=actor)
            self._notify(activated.version)
        return activated

    def _undo_stack(self, session: Session) -> list[int]:
        """Versions that were active, oldest first, the current one last (rollbacks popped)."""
        stack: list[int] = []
        rows = session.scalars(select(ModelActivation).order_by(ModelActivation.activation_id))
        for entry in rows:
            if entry.action == "activate":
                if not stack and entry.previous_version is not None:
                    stack.append(entry.previous_version)
                stack.append(entry.version)
                continue
            if stack:
                stack.pop()  # a rollback or refusal leaves the current version
            while stack and stack[-1] != entry.version:
                stack.pop()
            if not stack:
                stack.append(entry.version)
        return stack

    def rollback(self, actor: str | None = None) -> ModelVersion:
        """Re-activate the version that was active before the current one (skipping refused
        ones); Conflict when there is none."""

        def change(session: Session) -> ModelVersion:
            current = self._current(session)
            if current is None:
                raise Conflict("no model version is active: there is nothing to roll back")
            stack = self._undo_stack(session)
            if stack and stack[-1] == current.version:
                stack.pop()
            while stack:
                number = stack.pop()
                row = session.get(ModelVersionRow, number, with_for_update=True)
                if row is None or row.status == "refused" or number == current.version:
                    continue
                self._switch(session, row, "rollback", actor, current)
                return self._model(row)
            raise Conflict(
                f"nothing to roll back to: no version that was active before version "
                f"{current.version} can serve (never activated, or refused)"
            )

        restored = self._retrying(change)
        assert restored is not None
        log.info("model_rolled_back", version=restored.version, actor=actor)
        self._notify(restored.version)
        return restored

    def refuse(self, version: str | int, reason: str) -> ModelVersion | None:
        """Mark `version` refused with `reason`. If it was active, the newest good version
        that was active before (retired, verifying) takes over in the same transaction and
        is returned; None when nothing takes over."""
        number = _version_number(version)
        self.get(number)

        def change(session: Session) -> ModelVersion | None:
            row = self._locked(session, number)
            was_active = row.status == "active"
            row.status = "refused"
            row.status_reason = reason[:2000]
            session.flush()
            if not was_active:
                return None
            retired = session.scalars(
                select(ModelVersionRow)
                .where(ModelVersionRow.status == "retired")
                .order_by(ModelVersionRow.version.desc())
                .with_for_update()
            ).all()
            for candidate in retired:
                try:
                    self._verify_files(self.root / str(candidate.version), candidate.checksums)
                except ArtifactError as exc:
                    candidate.status = "refused"
                    candidate.status_reason = f"artifact check failed: {exc}"[:2000]
                    log.error("model_refused", version=candidate.version, reason=str(exc))
                    continue
                self._switch(session, candidate, "refuse-fallback", "registry", row)
                session.flush()
                return self._model(candidate)
            return None

        log.error("model_refused", version=number, reason=reason)
        fallback = self._retrying(change)
        if fallback is not None:
            log.warning("model_fallback", refused=number, version=fallback.version)
            self._notify(fallback.version)
        return fallback

    # -- registering ---------------------------------------------------------------------

    def staging(self) -> Path:
        """A fresh hidden directory to assemble a version in."""
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.root))

    def _check_staging(self, staging: Path) -> Path:
        staging = Path(staging)
        if staging.parent.resolve() != self.root.resolve() or not staging.name.startswith(
            STAGING_PREFIX
        ):
            raise ValueError(f"{staging} is not a staging directory of {self.root}")
        return staging

    def commit(self, staging: Path, info: dict[str, Any]) -> ModelVersion:
        """Register the version assembled in `staging`: insert its row (status candidate) and
        rename the directory to `root/<version>` in one transaction.

        `info` gives `algo`, `params`, `data`, `metrics`, `gate` and `timings`. The sha256 of
        every file is recorded. The row only commits after the rename, so a crash anywhere
        leaves no half-registered version (only a directory a later commit sweeps up).
        """
        staging = self._check_staging(staging)
        checksums = _checksums(staging)
        if not checksums:
            raise ArtifactError(f"{staging} holds no artifact files")
        self.sweep()
        for attempt in range(_ATTEMPTS):
            try:
                return self._commit_once(staging, info, checksums)
            except (IntegrityError, OperationalError) as exc:
                if not _collided(exc) or attempt == _ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))  # another trainer took this number
        raise AssertionError("unreachable")

    def _next_number(self, session: Session) -> int:
        newest_row = session.scalar(select(func.max(ModelVersionRow.version))) or 0
        on_disk = [int(p.name) for p in self.root.iterdir() if _VERSION_RE.match(p.name)]
        return max([newest_row, *on_disk]) + 1

    def _commit_once(
        self, staging: Path, info: dict[str, Any], checksums: dict[str, str]
    ) -> ModelVersion:
        with Session(self.engine, expire_on_commit=False) as session:
            session.begin()
            renamed_to: Path | None = None
            try:
                number = self._next_number(session)
                target = self.root / str(number)
                row = ModelVersionRow(
                    version=number,
                    algo=str(info["algo"]),
                    params=info.get("params") or {},
                    data=info.get("data") or {},
                    metrics=info.get("metrics") or {},
                    gate=info.get("gate") or {},
                    artifact_uri=target.resolve().as_uri(),
                    checksums=checksums,
                    status="candidate",
                    status_reason=info.get("status_reason"),
                    created_at=datetime.now(UTC),
                    timings=info.get("timings") or {},
                )
                session.add(row)
                session.flush()  # claims the number (waits for, or collides with, a rival)
                if target.exists():  # a dead trainer's directory under a number nobody holds
                    shutil.rmtree(target)
                os.rename(staging, target)
                renamed_to = target
                session.commit()  # the row becomes visible only now, after the rename
            except BaseException:
                session.rollback()
                if renamed_to is not None:
                    os.rename(renamed_to, staging)
                raise
            registered = self._model(row)
        log.info("model_registered", version=registered.version, algo=registered.algo)
        return registered

    def discard(self, staging: Path) -> None:
        """Remove a staging directory (a failed or abandoned training)."""
        shutil.rmtree(self._check_staging(staging), ignore_errors=True)

    def sweep(self, older_than: float = STALE_SECONDS) -> list[Path]:
        """Remove staging directories and unregistered version directories older than
        `older_than` seconds (left by killed trainers); returns what was removed."""
        if not self.root.is_dir():
            return []
        with self.engine.connect() as connection:
            registered = {
                str(v) for v in connection.execute(select(ModelVersionRow.version)).scalars()
            }
        cutoff = time.time() - older_than
        removed = []
        for path in self.root.iterdir():
            stale_staging = path.name.startswith(STAGING_PREFIX)
            orphan = (
                _VERSION_RE.match(path.name) is not None
                and path.name not in registered
                and not (path / "version.json").exists()  # a pre-database registry's version
            )
            try:
                if path.is_dir() and (stale_staging or orphan) and path.stat().st_mtime < cutoff:
                    shutil.rmtree(path)
                    removed.append(path)
            except OSError as exc:
                log.warning("model_sweep_failed", path=str(path), error=str(exc))
        return removed


def redis_notifier(settings: Settings) -> Notifier | None:
    """PUBLISH each newly active version on `<prefix>models` when Redis is configured."""
    if not settings.redis_url:
        return None
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    channel = f"{settings.redis_prefix}models"

    def notify(version: str) -> None:
        client.publish(channel, version)

    return notify
