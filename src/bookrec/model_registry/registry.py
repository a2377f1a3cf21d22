"""The model registry: read versions, register new ones, change which one is active.

Every method works in the caller's unit of work (`bookrec.db.session.unit_of_work`) and
commits nothing, so an activation and the audit row that records it commit or roll back
together. Changes of the active version (and registrations, which allocate numbers) take
turns (`serialise`): concurrent activations never collide half-way. Workers are told of a
new active version only once the transaction commits (`after_commit`); they also poll.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bookrec.db.base import table_of
from bookrec.db.session import after_commit, after_rollback, serialise
from bookrec.errors import Conflict, NotFound
from bookrec.model_registry import files
from bookrec.model_registry.models import ModelActivation, ModelVersionRow
from bookrec.model_registry.version import ModelVersion, is_version_directory
from bookrec.observability.metrics import MODEL_ACTIVATIONS, MODEL_REFUSALS
from bookrec.recsys.artifacts import ArtifactError

log = structlog.get_logger(__name__)

#: Told the number of each newly active version, after its transaction commits.
Notifier = Callable[[int], None]

_REASON_LENGTH = 2000


class ModelRegistry:
    """Model versions in the database, their artifacts under `root`."""

    def __init__(self, root: Path, notifier: Notifier | None = None) -> None:
        self.root = Path(root)
        self.notifier = notifier

    # -- reading --------------------------------------------------------------------------

    def _version(self, row: ModelVersionRow) -> ModelVersion:
        return ModelVersion.of(row, self.root)

    def active_number(self, session: Session) -> int | None:
        """The active version's number, or None: one indexed SELECT (API workers poll it)."""
        return session.scalar(
            select(ModelVersionRow.version).where(ModelVersionRow.status == "active")
        )

    def active(self, session: Session) -> ModelVersion | None:
        row = session.scalars(
            select(ModelVersionRow).where(ModelVersionRow.status == "active")
        ).one_or_none()
        return None if row is None else self._version(row)

    def get(self, session: Session, number: int) -> ModelVersion:
        """One version; raises NotFound."""
        return self._version(self._row(session, number))

    def versions(self, session: Session) -> list[ModelVersion]:
        """Every registered version, oldest first."""
        rows = session.scalars(select(ModelVersionRow).order_by(ModelVersionRow.version))
        return [self._version(row) for row in rows]

    def page(self, session: Session, offset: int, limit: int) -> tuple[list[ModelVersion], int]:
        """Versions newest first, `limit` of them from `offset`; and how many there are."""
        total = session.scalar(select(func.count()).select_from(ModelVersionRow)) or 0
        rows = session.scalars(
            select(ModelVersionRow)
            .order_by(ModelVersionRow.version.desc())
            .offset(max(offset, 0))
            .limit(max(limit, 0))
        )
        return [self._version(row) for row in rows], int(total)

    def serving_candidates(self, session: Session) -> list[ModelVersion]:
        """Versions that may serve, in the order to try them: the active one, then the rest
        (retired or candidate) newest first; never a refused or pruned one."""
        rows = session.scalars(
            select(ModelVersionRow)
            .where(ModelVersionRow.status.not_in(("refused", "pruned")))
            .order_by(ModelVersionRow.version.desc())
        ).all()
        ordered = sorted(rows, key=lambda row: row.status != "active")  # stable
        return [self._version(row) for row in ordered]

    def rehash(self, session: Session, number: int, under: str) -> None:
        """Record the sha256 of the files under `under` (e.g. "lists") of version `number`
        again, after bookrec itself rewrote them (an erasure wiping a reader's list)."""
        row = self._row(session, number, lock=True)
        prefix = f"{under}/"
        kept = {
            path: digest
            for path, digest in (row.checksums or {}).items()
            if not path.startswith(prefix)
        }
        fresh = files.checksums(self.root / str(number) / under)
        row.checksums = {**kept, **{prefix + path: digest for path, digest in fresh.items()}}

    def verify(self, version: ModelVersion) -> None:
        """Every recorded artifact file exists and matches its sha256 (ArtifactError if not)."""
        files.verify(version.path, version.checksums)

    @staticmethod
    def _row(session: Session, number: int, *, lock: bool = False) -> ModelVersionRow:
        row = session.get(ModelVersionRow, number, with_for_update=lock)
        if row is None:
            raise NotFound("model version", number)
        return row

    # -- changing the active version -----------------------------------------------------

    def _announce(self, session: Session, number: int) -> None:
        notifier = self.notifier
        if notifier is not None:
            after_commit(session, lambda: notifier(number))

    @staticmethod
    def _current(session: Session) -> ModelVersionRow | None:
        return session.scalars(
            select(ModelVersionRow).where(ModelVersionRow.status == "active")
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
        """Make `row` active: the previous one retires, the activation log records it."""
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
        after_commit(session, MODEL_ACTIVATIONS.labels(action).inc)
        self._announce(session, row.version)

    def activate(self, session: Session, number: int, actor: str | None = None) -> ModelVersion:
        """Make version `number` the active one, after verifying its artifacts.

        A version whose artifacts fail verification is marked refused and not activated: the
        Conflict raised keeps that change (`keep_changes`). A refused version is activated
        again only if it now verifies.
        """
        serialise(session, table_of(ModelVersionRow))
        row = self._row(session, number)
        if row.status == "pruned":
            raise Conflict(f"model version {number} cannot be activated: {row.status_reason}")
        try:
            files.verify(self.root / str(number), dict(row.checksums or {}))
        except ArtifactError as exc:
            if row.status != "refused":
                self.refuse(session, number, f"artifact check failed: {exc}")
            raise Conflict(
                f"model version {number} cannot be activated: its artifacts fail verification "
                f"({exc}); it is refused",
                keep_changes=True,
            ) from None
        if row.status != "active":
            reason = "verified again" if row.status == "refused" else None
            self._switch(session, row, "activate", actor, self._current(session), reason)
            log.info("model_activated", version=number, actor=actor)
        return self._version(row)

    def rollback(self, session: Session, actor: str | None = None) -> ModelVersion:
        """Re-activate the version that was active before the current one (skipping refused
        ones); Conflict when there is none."""
        serialise(session, table_of(ModelVersionRow))
        current = self._current(session)
        if current is None:
            raise Conflict("no model version is active: there is nothing to roll back")
        stack = self._undo_stack(session)
        if stack and stack[-1] == current.version:
            stack.pop()
        while stack:
            number = stack.pop()
            row = session.get(ModelVersionRow, number)
            if row is None or row.status in ("refused", "pruned") or number == current.version:
                continue
            self._switch(session, row, "rollback", actor, current)
            log.info("model_rolled_back", version=number, actor=actor)
            return self._version(row)
        raise Conflict(
            f"nothing to roll back to: no version that was active before version "
            f"{current.version} can serve (never activated, or refused)"
        )

    @staticmethod
    def _undo_stack(session: Session) -> list[int]:
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

    def refuse(self, session: Session, number: int, reason: str) -> ModelVersion | None:
        """Mark version `number` refused with `reason`. If it was active, the newest good
        version that was active before (retired, verifying) takes over and is returned;
        None when nothing takes over."""
        serialise(session, table_of(ModelVersionRow))
        row = self._row(session, number)
        log.error("model_refused", version=number, reason=reason)
        after_commit(session, MODEL_REFUSALS.inc)
        was_active = row.status == "active"
        row.status = "refused"
        row.status_reason = reason[:_REASON_LENGTH]
        session.flush()
        if not was_active:
            return None
        retired = session.scalars(
            select(ModelVersionRow)
            .where(ModelVersionRow.status == "retired")
            .order_by(ModelVersionRow.version.desc())
        ).all()
        for candidate in retired:
            try:
                files.verify(self.root / str(candidate.version), dict(candidate.checksums or {}))
            except ArtifactError as exc:
                candidate.status = "refused"
                candidate.status_reason = f"artifact check failed: {exc}"[:_REASON_LENGTH]
                log.error("model_refused", version=candidate.version, reason=str(exc))
                continue
            self._switch(session, candidate, "refuse-fallback", "registry", row)
            log.warning("model_fallback", refused=number, version=candidate.version)
            return self._version(candidate)
        return None

    # -- registering ---------------------------------------------------------------------

    def staging(self) -> Path:
        """A fresh hidden directory to assemble a version in (see `register`)."""
        return files.new_staging(self.root)

    def register(
        self,
        session: Session,
        staging: Path,
        *,
        algo: str,
        params: dict[str, Any],
        data: dict[str, Any],
        metrics: dict[str, Any],
        gate: dict[str, Any],
        timings: dict[str, Any],
        status_reason: str | None = None,
    ) -> ModelVersion:
        """Register the version assembled in `staging` as a candidate with the next number.

        The sha256 of every file is recorded and the directory is renamed to `root/<number>`
        now; if the unit of work rolls back it is renamed back to `staging`. A crash before
        the commit leaves only a directory that no row names, which `sweep` removes later.
        """
        staging = files.check_staging(self.root, staging)
        recorded = files.checksums(staging)
        if not recorded:
            raise ArtifactError(f"{staging} holds no artifact files")
        serialise(session, table_of(ModelVersionRow))
        self.sweep(session)
        number = self._next_number(session)
        target = self.root / str(number)
        row = ModelVersionRow(
            version=number,
            algo=algo,
            params=params,
            data=data,
            metrics=metrics,
            gate=gate,
            artifact_uri=target.resolve().as_uri(),
            checksums=recorded,
            status="candidate",
            status_reason=status_reason,
            created_at=datetime.now(UTC),
            timings=timings,
        )
        session.add(row)
        session.flush()
        if target.exists():  # a dead trainer's directory under a number nobody holds
            shutil.rmtree(target)
        os.rename(staging, target)
        after_rollback(session, lambda: os.rename(target, staging))
        log.info("model_registered", version=number, algo=algo)
        return self._version(row)

    def _next_number(self, session: Session) -> int:
        newest_row = session.scalar(select(func.max(ModelVersionRow.version))) or 0
        on_disk = [int(p.name) for p in self.root.iterdir() if is_version_directory(p.name)]
        return max([newest_row, *on_disk]) + 1

    def discard(self, staging: Path) -> None:
        """Remove a staging directory (a failed or abandoned training)."""
        shutil.rmtree(files.check_staging(self.root, staging), ignore_errors=True)

    def prune(self, session: Session, retention_days: int, keep: Collection[int] = ()) -> list[int]:
        """Delete the artifacts of every version older than `retention_days` that is not
        active (retired, candidate or refused) nor in `keep` (named by an experiment): the
        rows stay, marked pruned, and the files go once the unit of work commits. Returns the
        pruned version numbers."""
        cutoff = datetime.now(UTC) - timedelta(days=retention_days)
        rows = session.scalars(
            select(ModelVersionRow).where(
                ModelVersionRow.status.in_(("candidate", "retired", "refused")),
                ModelVersionRow.created_at < cutoff,
                ModelVersionRow.version.not_in(list(keep)),
            )
        ).all()
        for row in rows:
            row.status = "pruned"
            row.status_reason = (
                f"artifacts deleted after {retention_days} days (BOOKREC_MODEL_RETENTION_DAYS)"
            )
            row.checksums = {}
            after_commit(session, partial(shutil.rmtree, self.root / str(row.version), True))
            log.info("model_pruned", version=row.version)
        return [row.version for row in rows]

    def sweep(self, session: Session, older_than: float = files.STALE_SECONDS) -> list[Path]:
        """Remove staging directories and unregistered version directories older than
        `older_than` seconds (left by killed trainers); returns what was removed."""
        registered = session.scalars(select(ModelVersionRow.version)).all()
        return files.sweep(self.root, registered, older_than)
