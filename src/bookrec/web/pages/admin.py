"""Admin pages: overview, models (metrics over versions), jobs, experiments, API keys.

Every route depends on `AdminViewer`: anonymous visitors are sent to /login, readers get a
403 page. Changes go through the same services, audit records and notifications as the
admin API; each irreversible one is confirmed on a page of its own before it is posted.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from bookrec.accounts import api_keys, audit, overview
from bookrec.accounts.api_key_schemas import ApiKeyOut
from bookrec.db.session import after_commit, unit_of_work
from bookrec.errors import BookrecError, InvalidInput
from bookrec.experiments import service as experiments
from bookrec.experiments.schemas import ExperimentIn, ExperimentOut, VariantIn
from bookrec.jobs import repository as job_rows
from bookrec.jobs import service as jobs
from bookrec.jobs.schemas import JobOut, TrainRequest
from bookrec.model_registry.schemas import ModelVersionOut
from bookrec.web.charts import metric_names, metrics_chart
from bookrec.web.pages.common import NOTICES, FormErrors, Paging
from bookrec.web.rendering import finish, redirect, render
from bookrec.web.session import CSRF, AdminViewer, Viewer, get_admin_viewer, origin_of
from bookrec.web.state import state_of

router = APIRouter(
    prefix="/admin", include_in_schema=False, dependencies=[Depends(get_admin_viewer)]
)
Notice = Annotated[str | None, Query(max_length=40)]
PAGE_SIZE = 20
CHART_VERSIONS = 30


def _notice(code: str | None) -> str | None:
    return NOTICES.get(code or "")


# -- overview --------------------------------------------------------------------------------


@router.get("")
def overview_page(request: Request, viewer: AdminViewer) -> Response:
    state = state_of(request)
    database_ok = True
    counts: dict[str, int] = {}
    try:
        with unit_of_work(state.sessions) as session:
            session.execute(text("SELECT 1"))
            counts = overview.counts(session)
            running = job_rows.unfinished_count(session)
            experiment = experiments.running(session)
            experiment_name = None if experiment is None else experiment.name
    except BookrecError:
        database_ok = False
        running, experiment_name = 0, None
    model = state.serving.models.status()
    return render(
        request,
        "admin/overview.html",
        {
            "counts": counts,
            "database_ok": database_ok,
            "database": state.engine.dialect.name,
            "redis": state.settings.redis_url is not None,
            "model": model,
            "running_jobs": running,
            "experiment_name": experiment_name,
        },
    )


# -- models ----------------------------------------------------------------------------------


def _registry(request: Request) -> Any:
    return state_of(request).serving.models.registry


@router.get("/models")
def models_page(request: Request, viewer: AdminViewer, notice: Notice = None) -> Response:
    state = state_of(request)
    registry = _registry(request)
    with unit_of_work(state.sessions) as session:
        versions = [ModelVersionOut.of(v) for v in registry.versions(session)]
        active = registry.active_number(session)
    versions.sort(key=lambda v: v.version, reverse=True)
    charted = sorted(versions[:CHART_VERSIONS], key=lambda v: v.version)
    names = metric_names([v.metrics for v in charted], state.settings.gate_metric)
    chart = metrics_chart([(v.version, v.metrics) for v in charted], names)
    return render(
        request,
        "admin/models.html",
        {
            "versions": versions,
            "active": active,
            "chart": chart,
            "metric_names": names,
            "charted": charted,
            "gate_metric": state.settings.gate_metric,
            "notice": _notice(notice),
        },
    )


@router.get("/models/{version}/activate")
def confirm_activate(request: Request, viewer: AdminViewer, version: int) -> Response:
    state = state_of(request)
    with unit_of_work(state.sessions) as session:
        target = ModelVersionOut.of(_registry(request).get(session, version))
        active = _registry(request).active_number(session)
    return render(
        request,
        "admin/confirm.html",
        {
            "title": f"Activate model version {version}?",
            "detail": f"Version {version} ({target.algo}) will answer every list instead of "
            f"version {active}. You can roll back afterwards.",
            "action": f"/admin/models/{version}/activate",
            "button": f"Activate version {version}",
            "back": "/admin/models",
        },
    )


def _audit_model(
    session: Any, request: Request, action: str, viewer: Viewer, version: Any, previous: int | None
) -> None:
    audit.record(
        session,
        action,
        origin=origin_of(request),
        actor_user_id=viewer.user_id,
        target=f"model_version:{version.number}",
        details={"previous_version": previous, "algo": version.algo},
    )


@router.post("/models/{version}/activate", dependencies=CSRF)
def activate(request: Request, viewer: AdminViewer, version: int) -> Response:
    state = state_of(request)
    registry = _registry(request)
    try:
        with unit_of_work(state.sessions) as session:
            previous = registry.active_number(session)
            activated = registry.activate(session, version, actor=f"user:{viewer.user_id}")
            _audit_model(session, request, "model.activate", viewer, activated, previous)
    except BookrecError as exc:
        return _models_error(request, exc)
    return redirect(request, "/admin/models", notice="activated")


@router.get("/models/rollback")
def confirm_rollback(request: Request, viewer: AdminViewer) -> Response:
    return render(
        request,
        "admin/confirm.html",
        {
            "title": "Roll back to the previous model version?",
            "detail": "The version that was active before the current one answers every list "
            "again.",
            "action": "/admin/models/rollback",
            "button": "Roll back",
            "back": "/admin/models",
        },
    )


@router.post("/models/rollback", dependencies=CSRF)
def rollback(request: Request, viewer: AdminViewer) -> Response:
    state = state_of(request)
    registry = _registry(request)
    try:
        with unit_of_work(state.sessions) as session:
            previous = registry.active_number(session)
            restored = registry.rollback(session, actor=f"user:{viewer.user_id}")
            _audit_model(session, request, "model.rollback", viewer, restored, previous)
    except BookrecError as exc:
        return _models_error(request, exc)
    return redirect(request, "/admin/models", notice="rolled-back")


def _models_error(request: Request, exc: BookrecError) -> Response:
    return render(
        request,
        "error.html",
        {"status": exc.status, "title": exc.title, "detail": exc.detail, "back": "/admin/models"},
        status_code=exc.status,
    )


# -- jobs ------------------------------------------------------------------------------------


def _algorithms() -> list[str]:
    from bookrec.recsys import registry as algorithms  # loaded by serving already

    return list(algorithms.ALGORITHMS)


@router.get("/jobs")
def jobs_page(
    request: Request,
    viewer: AdminViewer,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    notice: Notice = None,
) -> Response:
    state = state_of(request)
    jobs.reap(state.engine, state.settings.job_lease_seconds)
    return _jobs_page(request, page, FormErrors(), _notice(notice))


def _jobs_page(
    request: Request, page: int, errors: FormErrors, notice: str | None, status_code: int = 200
) -> Response:
    """The jobs page: the start form (with its errors) above a page of the job history."""
    with unit_of_work(state_of(request).sessions) as session:
        rows, total = job_rows.page(session, (page - 1) * PAGE_SIZE, PAGE_SIZE, None)
        listed = [JobOut.model_validate(row) for row in rows]
    return render(
        request,
        "admin/jobs.html",
        {
            "jobs": listed,
            "paging": Paging(page, PAGE_SIZE, total),
            "algorithms": _algorithms(),
            "errors": errors,
            "notice": notice,
        },
        status_code=status_code,
    )


@router.post("/jobs", dependencies=CSRF)
def start_training(
    request: Request,
    viewer: AdminViewer,
    algo: Annotated[str, Form(max_length=32)] = "",
    force: Annotated[str | None, Form(max_length=10)] = None,
) -> Response:
    state = state_of(request)
    try:
        body = TrainRequest(algo=algo or None, force=force == "yes")
        job = jobs.request_training(
            state.sessions,
            state.engine,
            state.settings,
            body,
            actor_user_id=viewer.user_id,
            origin=origin_of(request),
        )
    except BookrecError as exc:
        status = 400 if exc.status == 422 else exc.status
        return _jobs_page(request, 1, FormErrors.of(exc, "algo"), None, status)
    return redirect(request, f"/admin/jobs/{job.job_id}", notice="training")


@router.get("/jobs/{job_id}")
def job_page(request: Request, viewer: AdminViewer, job_id: int, notice: Notice = None) -> Response:
    state = state_of(request)
    jobs.reap(state.engine, state.settings.job_lease_seconds)
    with unit_of_work(state.sessions) as session:
        job = JobOut.model_validate(job_rows.get(session, job_id))
    return render(request, "admin/job.html", {"job": job, "notice": _notice(notice)})


@router.get("/jobs/{job_id}/progress")
def job_progress(request: Request, viewer: AdminViewer, job_id: int) -> Response:
    """The job's state for the page's progress bar (static/app.js polls it)."""
    state = state_of(request)
    with unit_of_work(state.sessions) as session:
        job = JobOut.model_validate(job_rows.get(session, job_id))
    body = {
        "status": job.status,
        "stage": job.stage,
        "progress": round(job.progress, 1),
        "error": job.error,
        "finished": job.status in ("succeeded", "failed"),
    }
    return finish(request, JSONResponse(body))


# -- experiments -----------------------------------------------------------------------------


@router.get("/experiments")
def experiments_page(request: Request, viewer: AdminViewer, notice: Notice = None) -> Response:
    state = state_of(request)
    with unit_of_work(state.sessions) as session:
        found, _total = experiments.page(session, 0, 100)
        listed = [ExperimentOut.model_validate(e) for e in found]
        numbers = [v.number for v in _registry(request).versions(session)]
    return render(
        request,
        "admin/experiments.html",
        {
            "experiments": listed,
            "versions": numbers,
            "errors": FormErrors(),
            "form": {},
            "notice": _notice(notice),
        },
    )


def _variant(name: str, target: str) -> VariantIn:
    """A variant from the form: `target` is a strategy name or `v<number>` (a model version)."""
    if target.startswith("v") and target[1:].isdigit():
        return VariantIn(name=name, model_version=int(target[1:]))
    return VariantIn(name=name, strategy=target)


@router.post("/experiments", dependencies=CSRF)
def create_experiment(
    request: Request,
    viewer: AdminViewer,
    name: Annotated[str, Form(max_length=100)] = "",
    description: Annotated[str, Form(max_length=1000)] = "",
    control: Annotated[str, Form(max_length=32)] = "personal",
    treatment: Annotated[str, Form(max_length=32)] = "popular",
) -> Response:
    state = state_of(request)
    form = {"name": name, "description": description, "control": control, "treatment": treatment}
    try:
        try:
            spec = ExperimentIn(
                name=name.strip(),
                description=description.strip() or None,
                variants=[_variant("control", control), _variant("treatment", treatment)],
            )
        except ValueError as exc:
            raise InvalidInput(
                str(exc).splitlines()[-1] if str(exc) else "invalid", field="name"
            ) from None
        with unit_of_work(state.sessions) as session:
            experiment = experiments.create(
                session, spec, _registry(request), viewer.user_id, origin_of(request)
            )
            experiment_id = experiment.experiment_id
    except BookrecError as exc:
        with unit_of_work(state.sessions) as session:
            found, _total = experiments.page(session, 0, 100)
            listed = [ExperimentOut.model_validate(e) for e in found]
            numbers = [v.number for v in _registry(request).versions(session)]
        return render(
            request,
            "admin/experiments.html",
            {
                "experiments": listed,
                "versions": numbers,
                "errors": FormErrors.of(exc, "name"),
                "form": form,
                "notice": None,
            },
            status_code=400 if exc.status == 422 else exc.status,
        )
    return redirect(request, f"/admin/experiments/{experiment_id}", notice="experiment-created")


@router.get("/experiments/{experiment_id}")
def experiment_page(
    request: Request, viewer: AdminViewer, experiment_id: int, notice: Notice = None
) -> Response:
    return _experiment_page(request, experiment_id, _notice(notice), None)


def _experiment_page(
    request: Request,
    experiment_id: int,
    notice: str | None,
    error: str | None,
    status_code: int = 200,
) -> Response:
    """One experiment: its variants, the actions its status allows, and its results."""
    state = state_of(request)
    with unit_of_work(state.sessions) as session:
        experiment = experiments.get(session, experiment_id)
        analysis = experiments.results(session, experiment, state.settings.experiment_min_readers)
        out = ExperimentOut.model_validate(experiment)
        results = experiments.report(analysis)
    return render(
        request,
        "admin/experiment.html",
        {"experiment": out, "results": results, "notice": notice, "error": error},
        status_code=status_code,
    )


@router.get("/experiments/{experiment_id}/ship")
def confirm_ship(
    request: Request,
    viewer: AdminViewer,
    experiment_id: int,
    variant: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    with unit_of_work(state_of(request).sessions) as session:
        experiment = ExperimentOut.model_validate(experiments.get(session, experiment_id))
    chosen = next((v for v in experiment.variants if v.name == variant), None)
    if chosen is None:
        raise InvalidInput(
            f"experiment {experiment_id} has no variant {variant!r}", field="variant"
        )
    what = ", ".join(
        part
        for part in (
            chosen.strategy and f"the {chosen.strategy} strategy",
            chosen.model_version and f"model version {chosen.model_version}",
        )
        if part
    )
    return render(
        request,
        "admin/confirm.html",
        {
            "title": f"Ship variant {variant} of {experiment.name}?",
            "detail": f"The experiment ends and {what or 'this variant'} answers every personal "
            "list from now on.",
            "action": f"/admin/experiments/{experiment_id}/ship",
            "fields": {"variant": variant},
            "button": f"Ship {variant}",
            "back": f"/admin/experiments/{experiment_id}",
        },
    )


@router.post("/experiments/{experiment_id}/{action}", dependencies=CSRF)
def change_experiment(
    request: Request,
    viewer: AdminViewer,
    experiment_id: int,
    action: str,
    variant: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    state = state_of(request)
    registry = _registry(request)
    origin = origin_of(request)
    try:
        with unit_of_work(state.sessions) as session:
            if action == "start":
                experiments.start(session, experiment_id, registry, viewer.user_id, origin)
            elif action == "stop":
                experiments.stop(session, experiment_id, viewer.user_id, origin)
            elif action == "ship":
                experiments.ship(
                    session,
                    experiment_id,
                    variant,
                    registry,
                    state.settings.experiment_min_readers,
                    actor_user_id=viewer.user_id,
                    origin=origin,
                )
            else:
                raise InvalidInput(f"unknown action {action!r}", field="action")
            after_commit(session, state.serving.refresher.announce_change)
    except BookrecError as exc:
        status = 400 if exc.status == 422 else exc.status
        return _experiment_page(request, experiment_id, None, exc.detail, status)
    notices = {
        "start": "experiment-started",
        "stop": "experiment-stopped",
        "ship": "experiment-shipped",
    }
    return redirect(request, f"/admin/experiments/{experiment_id}", notice=notices[action])


# -- API keys --------------------------------------------------------------------------------


def _keys(request: Request) -> list[ApiKeyOut]:
    with unit_of_work(state_of(request).sessions) as session:
        keys, _total = api_keys.page(session, 0, 200)
        return [ApiKeyOut.model_validate(key) for key in keys]


@router.get("/api-keys")
def api_keys_page(request: Request, viewer: AdminViewer, notice: Notice = None) -> Response:
    return render(
        request,
        "admin/api_keys.html",
        {
            "keys": _keys(request),
            "created": None,
            "scopes": sorted(api_keys.SCOPES),
            "errors": FormErrors(),
            "notice": _notice(notice),
        },
    )


@router.post("/api-keys", dependencies=CSRF)
def create_api_key(
    request: Request,
    viewer: AdminViewer,
    name: Annotated[str, Form(max_length=100)] = "",
    scopes: Annotated[list[str] | None, Form(max_length=10)] = None,
) -> Response:
    state = state_of(request)
    created = None
    errors = FormErrors()
    try:
        if not name.strip():
            raise InvalidInput("give the key a name, e.g. the app that will use it", field="name")
        with unit_of_work(state.sessions) as session:
            issued = api_keys.create(
                session,
                name,
                scopes or [],
                actor_user_id=viewer.user_id,
                origin=origin_of(request),
            )
            created = {"name": issued.key.name, "secret": issued.secret}
    except BookrecError as exc:
        errors = FormErrors.of(exc, "name")
    return render(
        request,
        "admin/api_keys.html",
        {
            "keys": _keys(request),
            "created": created,
            "scopes": sorted(api_keys.SCOPES),
            "errors": errors,
            "notice": None,
        },
        status_code=400 if errors else 201,
    )


@router.get("/api-keys/{key_id}/revoke")
def confirm_revoke_api_key(request: Request, viewer: AdminViewer, key_id: int) -> Response:
    key = next((key for key in _keys(request) if key.key_id == key_id), None)
    if key is None or key.revoked_at is not None:
        return redirect(request, "/admin/api-keys")
    return render(
        request,
        "admin/confirm.html",
        {
            "title": f"Revoke the API key {key.name}?",
            "detail": f"Every request with brk_{key.prefix}… is refused from now on; a revoked "
            "key cannot be restored (create a new one).",
            "action": f"/admin/api-keys/{key_id}/revoke",
            "button": "Revoke the key",
            "back": "/admin/api-keys",
        },
    )


@router.post("/api-keys/{key_id}/revoke", dependencies=CSRF)
def revoke_api_key(request: Request, viewer: AdminViewer, key_id: int) -> Response:
    state = state_of(request)
    with unit_of_work(state.sessions) as session:
        api_keys.revoke(session, key_id, actor_user_id=viewer.user_id, origin=origin_of(request))
    state.auth.verified_keys.clear()
    return redirect(request, "/admin/api-keys", notice="key-revoked")
