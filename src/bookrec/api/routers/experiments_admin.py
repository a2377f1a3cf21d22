"""Admin operations on experiments: create, start, stop, ship, and read the results.

Each change and its audit row are the request's unit of work; once it commits, this worker
re-reads the running experiment at once and the others are told through Redis (or find out
within `BOOKREC_MODEL_POLL_SECONDS`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Response
from sqlalchemy.orm import Session

from bookrec.api import access
from bookrec.api.deps import OriginDep, PageDep, RegistryDep, SessionDep, StateDep
from bookrec.api.schemas import PROBLEM, Page
from bookrec.api.state import AppState
from bookrec.db.session import after_commit
from bookrec.experiments import service as experiments
from bookrec.experiments.models import Experiment
from bookrec.experiments.schemas import ExperimentIn, ExperimentOut, ExperimentReport, ShipIn

router = access.admin_router()

ExperimentPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="The experiment's id")]
CHANGE_RESPONSES: dict[int | str, dict[str, Any]] = {404: PROBLEM, 409: PROBLEM, 422: PROBLEM}


def _report(session: Session, state: AppState, experiment: Experiment) -> ExperimentReport:
    analysis = experiments.results(session, experiment, state.settings.experiment_min_readers)
    out = ExperimentOut.model_validate(experiment)
    return ExperimentReport(**out.model_dump(), results=experiments.report(analysis))


def _announce(session: Session, state: AppState) -> None:
    after_commit(session, state.serving.refresher.announce_change)


@router.post(
    "/experiments",
    status_code=201,
    summary="Create an experiment (draft): variants by strategy and/or model version, weights",
    responses={409: PROBLEM, 422: PROBLEM},
)
def create_experiment(
    session: SessionDep,
    registry: RegistryDep,
    admin: access.Admin,
    origin: OriginDep,
    body: ExperimentIn,
    response: Response,
) -> ExperimentOut:
    experiment = experiments.create(session, body, registry, admin.user_id, origin)
    response.headers["Location"] = f"/api/v1/admin/experiments/{experiment.experiment_id}"
    return ExperimentOut.model_validate(experiment)


@router.get("/experiments", summary="Experiments, newest first")
def list_experiments(session: SessionDep, page: PageDep) -> Page[ExperimentOut]:
    found, total = experiments.page(session, page.offset, page.size)
    return page.of([ExperimentOut.model_validate(e) for e in found], total)


@router.get(
    "/experiments/{experiment_id}",
    summary="One experiment with its results: CTR per variant, the test, the sample ratio",
    responses={404: PROBLEM},
)
def get_experiment(
    session: SessionDep, state: StateDep, experiment_id: ExperimentPath
) -> ExperimentReport:
    return _report(session, state, experiments.get(session, experiment_id))


@router.post(
    "/experiments/{experiment_id}/start",
    summary="Start a draft: personal lists follow each reader's variant from now",
    responses=CHANGE_RESPONSES,
)
def start_experiment(
    session: SessionDep,
    state: StateDep,
    registry: RegistryDep,
    admin: access.Admin,
    origin: OriginDep,
    experiment_id: ExperimentPath,
) -> ExperimentOut:
    experiment = experiments.start(session, experiment_id, registry, admin.user_id, origin)
    _announce(session, state)
    return ExperimentOut.model_validate(experiment)


@router.post(
    "/experiments/{experiment_id}/stop",
    summary="Stop a running experiment: lists go back to the default",
    responses=CHANGE_RESPONSES,
)
def stop_experiment(
    session: SessionDep,
    state: StateDep,
    admin: access.Admin,
    origin: OriginDep,
    experiment_id: ExperimentPath,
) -> ExperimentOut:
    experiment = experiments.stop(session, experiment_id, admin.user_id, origin)
    _announce(session, state)
    return ExperimentOut.model_validate(experiment)


@router.post(
    "/experiments/{experiment_id}/ship",
    summary="Ship a variant: its model version becomes active, its strategy the default",
    responses=CHANGE_RESPONSES,
)
def ship_experiment(
    session: SessionDep,
    state: StateDep,
    registry: RegistryDep,
    admin: access.Admin,
    origin: OriginDep,
    experiment_id: ExperimentPath,
    body: ShipIn,
) -> ExperimentReport:
    experiment = experiments.ship(
        session,
        experiment_id,
        body.variant,
        registry,
        state.settings.experiment_min_readers,
        force=body.force,
        actor_user_id=admin.user_id,
        origin=origin,
    )
    _announce(session, state)
    return _report(session, state, experiment)
