"""Experiments' lifecycle (draft -> running -> stopped | shipped), exposures and clicks, results.

Each operation works in the caller's unit of work and writes its audit row there, so the
change and its record commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bookrec.accounts import audit
from bookrec.accounts.privacy import Section
from bookrec.accounts.schemas import ExposureExport
from bookrec.db.base import table_of
from bookrec.db.paging import page_of_objects
from bookrec.errors import Conflict, InvalidInput, NotFound
from bookrec.experiments import statistics
from bookrec.experiments.assignment import assign, cumulative
from bookrec.experiments.models import Experiment, ExperimentVariant, Exposure
from bookrec.experiments.schemas import ExperimentIn
from bookrec.model_registry.registry import ModelRegistry
from bookrec.readers.models import Reader

#: Versions a variant may name (a refused or pruned version cannot be loaded).
SERVABLE = ("candidate", "active", "retired")


def get(session: Session, experiment_id: int, *, lock: bool = False) -> Experiment:
    experiment = session.get(Experiment, experiment_id, with_for_update=lock)
    if experiment is None:
        raise NotFound("experiment", experiment_id)
    return experiment


def page(session: Session, offset: int, limit: int) -> tuple[list[Experiment], int]:
    query = select(Experiment).order_by(Experiment.experiment_id.desc())
    return page_of_objects(session, query, offset, limit)


def running(session: Session, surface: str = "personal") -> Experiment | None:
    return session.scalars(
        select(Experiment).where(Experiment.surface == surface, Experiment.status == "running")
    ).one_or_none()


def shipped_strategy(session: Session, surface: str = "personal") -> str | None:
    """The strategy of the last shipped variant that named one: the surface's default since."""
    row = session.execute(
        select(ExperimentVariant.strategy)
        .join(Experiment, Experiment.experiment_id == ExperimentVariant.experiment_id)
        .where(
            Experiment.surface == surface,
            Experiment.status == "shipped",
            ExperimentVariant.name == Experiment.shipped_variant,
        )
        .order_by(Experiment.stopped_at.desc(), Experiment.experiment_id.desc())
        .limit(1)
    ).first()
    return None if row is None else row.strategy


def versions_in_use(session: Session) -> set[int]:
    """Model versions a draft or running experiment names: never pruned."""
    return {
        number
        for number in session.scalars(
            select(ExperimentVariant.model_version)
            .join(Experiment, Experiment.experiment_id == ExperimentVariant.experiment_id)
            .where(
                Experiment.status.in_(("draft", "running")),
                ExperimentVariant.model_version.is_not(None),
            )
        ).all()
        if number is not None
    }


def _check_versions(session: Session, registry: ModelRegistry, variants: Sequence[Any]) -> None:
    for index, variant in enumerate(variants):
        if variant.model_version is None:
            continue
        field = f"variants[{index}].model_version"
        try:
            version = registry.get(session, variant.model_version)
        except NotFound:
            raise InvalidInput(
                f"{field}: model version {variant.model_version} does not exist", field=field
            ) from None
        if version.status not in SERVABLE:
            raise InvalidInput(
                f"{field}: model version {variant.model_version} is {version.status} and "
                "cannot serve lists",
                field=field,
            )


def _audit(
    session: Session,
    action: str,
    experiment: Experiment,
    actor_user_id: int | None,
    origin: audit.Origin | None,
    **details: Any,
) -> None:
    audit.record(
        session,
        action,
        origin=origin,
        actor_user_id=actor_user_id,
        target=f"experiment:{experiment.experiment_id}",
        details={"name": experiment.name, **details},
    )


def create(
    session: Session,
    spec: ExperimentIn,
    registry: ModelRegistry,
    actor_user_id: int | None = None,
    origin: audit.Origin | None = None,
) -> Experiment:
    """A new experiment in draft; 422 for a variant naming a version that cannot serve, 409
    for a name in use."""
    _check_versions(session, registry, spec.variants)
    if session.scalars(select(Experiment).where(Experiment.name == spec.name)).first():
        raise Conflict(f"an experiment named {spec.name!r} exists already", field="name")
    experiment = Experiment(
        name=spec.name,
        description=spec.description,
        created_by=actor_user_id,
        variants=[
            ExperimentVariant(position=i, **variant.model_dump())
            for i, variant in enumerate(spec.variants)
        ],
    )
    session.add(experiment)
    session.flush()
    _audit(
        session,
        "experiment.create",
        experiment,
        actor_user_id,
        origin,
        variants=[variant.model_dump() for variant in spec.variants],
    )
    return experiment


def start(
    session: Session,
    experiment_id: int,
    registry: ModelRegistry,
    actor_user_id: int | None = None,
    origin: audit.Origin | None = None,
) -> Experiment:
    """Draft -> running; 409 when it is not a draft or another experiment runs."""
    experiment = get(session, experiment_id, lock=True)
    if experiment.status != "draft":
        raise Conflict(
            f"experiment {experiment_id} is {experiment.status}: only a draft can start "
            "(create a new experiment to run it again)",
            field="status",
        )
    other = running(session, experiment.surface)
    if other is not None:
        raise Conflict(
            f"experiment {other.experiment_id} ({other.name!r}) is running on the "
            f"{experiment.surface} lists: stop it first",
            field="status",
        )
    _check_versions(session, registry, experiment.variants)
    experiment.status = "running"
    experiment.started_at = datetime.now(UTC)
    try:
        session.flush()
    except IntegrityError:  # another request started one in between
        raise Conflict(f"another experiment started on the {experiment.surface} lists") from None
    _audit(session, "experiment.start", experiment, actor_user_id, origin)
    return experiment


def stop(
    session: Session,
    experiment_id: int,
    actor_user_id: int | None = None,
    origin: audit.Origin | None = None,
) -> Experiment:
    """Running -> stopped: lists go back to the default; 409 when it is not running."""
    experiment = get(session, experiment_id, lock=True)
    if experiment.status != "running":
        raise Conflict(
            f"experiment {experiment_id} is {experiment.status}, not running", field="status"
        )
    experiment.status = "stopped"
    experiment.stopped_at = datetime.now(UTC)
    _audit(session, "experiment.stop", experiment, actor_user_id, origin)
    return experiment


def ship(
    session: Session,
    experiment_id: int,
    variant_name: str,
    registry: ModelRegistry,
    min_readers: int,
    force: bool = False,
    actor_user_id: int | None = None,
    origin: audit.Origin | None = None,
) -> Experiment:
    """Make a variant the default and end the experiment: its model version is activated,
    its strategy becomes the personal lists' default. Refused (409) before every variant has
    `min_readers` readers unless `force`."""
    experiment = get(session, experiment_id, lock=True)
    if experiment.status not in ("running", "stopped"):
        raise Conflict(
            f"experiment {experiment_id} is {experiment.status}: only a running or stopped "
            "experiment can ship",
            field="status",
        )
    variant = next((v for v in experiment.variants if v.name == variant_name), None)
    if variant is None:
        names = ", ".join(v.name for v in experiment.variants)
        raise InvalidInput(
            f"variant {variant_name!r} is not in experiment {experiment_id} ({names})",
            field="variant",
        )
    analysis = results(session, experiment, min_readers)
    if not force and not analysis.enough_data:
        raise Conflict(f"{analysis.decision}; send force=true to ship anyway", field="force")
    previous = registry.active_number(session)
    if variant.model_version is not None and variant.model_version != previous:
        registry.activate(session, variant.model_version, actor=f"experiment:{experiment_id}")
    experiment.status = "shipped"
    experiment.shipped_variant = variant.name
    experiment.stopped_at = experiment.stopped_at or datetime.now(UTC)
    _audit(
        session,
        "experiment.ship",
        experiment,
        actor_user_id,
        origin,
        variant=variant.name,
        strategy=variant.strategy,
        model_version=variant.model_version,
        previous_version=previous,
        forced=force,
        decision=analysis.decision,
    )
    return experiment


# -- exposures and clicks ----------------------------------------------------------------


def record_exposures(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert (experiment, reader, book, variant, shown_at) rows; pairs already shown stay
    as they are. Rows of readers erased meanwhile are dropped."""
    if not rows:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    known = set(
        connection.scalars(
            select(Reader.reader_id).where(Reader.reader_id.in_({r["reader_id"] for r in rows}))
        )
    )
    kept = [row for row in rows if row["reader_id"] in known]
    if kept:
        statement = dialect.insert(table_of(Exposure)).on_conflict_do_nothing()
        connection.execute(statement, kept)


def variant_of(experiment: Experiment, reader_id: int) -> ExperimentVariant:
    """The reader's variant: the same in every worker, every time."""
    shares = cumulative([variant.weight for variant in experiment.variants])
    return experiment.variants[assign(experiment.experiment_id, reader_id, shares)]


def record_feedback(
    session: Session, reader_ids: Sequence[int], events: Sequence[Any], times: Sequence[int]
) -> None:
    """Experiment bookkeeping for a batch of events (already validated as events).

    An event naming `experiment_id` must name a started experiment (and, if it names a
    `variant`, the reader's own); its impression or click is recorded against the reader's
    variant, a click implying its impression. A click naming no experiment counts for the
    running experiment when that book was shown to the reader there. Views are not clicks.
    """
    experiments: dict[int, Experiment] = {}
    errors: list[dict[str, str]] = []
    explicit: list[tuple[Experiment, ExperimentVariant, int, Any, int]] = []
    for index, (reader_id, event, occurred_at) in enumerate(
        zip(reader_ids, events, times, strict=True)
    ):
        if event.experiment_id is None:
            if event.variant is not None:
                field = f"events[{index}].variant"
                errors.append({"field": field, "message": "names no experiment_id"})
            continue
        field = f"events[{index}].experiment_id"
        experiment = experiments.get(event.experiment_id) or session.get(
            Experiment, event.experiment_id
        )
        if experiment is None:
            errors.append(
                {"field": field, "message": f"experiment {event.experiment_id} does not exist"}
            )
            continue
        experiments[experiment.experiment_id] = experiment
        if experiment.status == "draft" or experiment.started_at is None:
            errors.append(
                {
                    "field": field,
                    "message": f"experiment {experiment.experiment_id} has not started",
                }
            )
            continue
        if experiment.stopped_at is not None and occurred_at > experiment.stopped_at.timestamp():
            errors.append(
                {
                    "field": field,
                    "message": f"experiment {experiment.experiment_id} ended before this event",
                }
            )
            continue
        variant = variant_of(experiment, reader_id)
        if event.variant is not None and event.variant != variant.name:
            errors.append(
                {
                    "field": f"events[{index}].variant",
                    "message": f"this reader is in variant {variant.name!r} of experiment "
                    f"{experiment.experiment_id}, not {event.variant!r}",
                }
            )
            continue
        if event.kind in ("impression", "click"):
            explicit.append((experiment, variant, reader_id, event, occurred_at))
    if errors:
        first = errors[0]
        raise InvalidInput(
            f"{first['field']}: {first['message']}", field=first["field"], errors=errors
        )
    connection = session.connection()
    record_exposures(
        connection,
        [
            {
                "experiment_id": experiment.experiment_id,
                "reader_id": reader_id,
                "book_id": event.book_id,
                "variant": variant.name,
                "shown_at": occurred_at,
            }
            for experiment, variant, reader_id, event, occurred_at in explicit
        ],
    )
    clicks = [
        (experiment.experiment_id, reader_id, event.book_id, occurred_at)
        for experiment, _variant, reader_id, event, occurred_at in explicit
        if event.kind == "click"
    ]
    current = running(session)
    if current is not None:
        clicks += [
            (current.experiment_id, reader_id, event.book_id, occurred_at)
            for reader_id, event, occurred_at in zip(reader_ids, events, times, strict=True)
            if event.kind == "click" and event.experiment_id is None
        ]
    if clicks:  # one statement, run over the batch's clicks (executemany)
        first_click = (
            update(Exposure)
            .where(
                Exposure.experiment_id == bindparam("click_experiment"),
                Exposure.reader_id == bindparam("click_reader"),
                Exposure.book_id == bindparam("click_book"),
                Exposure.clicked_at.is_(None),
            )
            .values(clicked_at=bindparam("click_at"))
        )
        connection.execute(
            first_click,
            [
                {"click_experiment": e, "click_reader": r, "click_book": b, "click_at": t}
                for e, r, b, t in clicks
            ],
        )


# -- results -----------------------------------------------------------------------------


def results(session: Session, experiment: Experiment, min_readers: int) -> statistics.Analysis:
    """Every variant's exposures per reader, analysed (`experiments.statistics`)."""
    rows = session.execute(
        select(
            Exposure.variant,
            func.count().label("impressions"),
            func.count(Exposure.clicked_at).label("clicks"),
        )
        .where(Exposure.experiment_id == experiment.experiment_id)
        .group_by(Exposure.variant, Exposure.reader_id)
    ).all()
    per_variant: dict[str, tuple[list[int], list[int]]] = {
        v.name: ([], []) for v in experiment.variants
    }
    for row in rows:
        if row.variant in per_variant:
            per_variant[row.variant][0].append(int(row.impressions))
            per_variant[row.variant][1].append(int(row.clicks))
    arms = [
        statistics.ArmData.of(v.name, v.weight, *per_variant[v.name]) for v in experiment.variants
    ]
    return statistics.analyse(arms, min_readers)


def report(analysis: statistics.Analysis) -> dict[str, Any]:
    """An analysis as the API and `bookrec experiments show --json` print it."""

    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return None if np.isnan(value) else round(value, 6)
        return value

    def clean(item: Any) -> dict[str, Any]:
        return {key: rounded(value) for key, value in asdict(item).items()}

    return {
        "variants": [clean(arm) for arm in analysis.arms],
        "comparisons": [clean(c) for c in analysis.comparisons],
        "test": {
            "method": "two-sided z-test on CTR, delta-method variance with readers as units",
            "alpha": 0.05,
            "correction": "bonferroni" if len(analysis.comparisons) > 1 else None,
            "p_value": rounded(analysis.comparisons[0].p_value) if analysis.comparisons else None,
            "significant": any(c.significant for c in analysis.comparisons),
        },
        "sample_ratio": clean(analysis.sample_ratio),
        "min_readers_per_variant": analysis.min_readers,
        "enough_data": analysis.enough_data,
        "decision": analysis.decision,
    }


def export_section(reader_id: int) -> Section:
    """The reader's exposures and clicks, as a section of their data export."""
    return (
        "experiment_exposures",
        select(
            Exposure.experiment_id,
            Exposure.variant,
            Exposure.book_id,
            Exposure.shown_at,
            Exposure.clicked_at,
        )
        .where(Exposure.reader_id == reader_id)
        .order_by(Exposure.experiment_id, Exposure.book_id),
        lambda e: ExposureExport(
            experiment_id=e.experiment_id,
            variant=e.variant,
            book_id=e.book_id,
            shown_at=e.shown_at,
            clicked_at=e.clicked_at,
        ),
    )
