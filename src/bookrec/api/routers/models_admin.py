"""Admin operations on model versions: list them, activate one, roll back.

Activation and rollback are one database transaction each (the registry's); every API worker
switches to the new active version within seconds. Each change is in the audit log.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path

from bookrec.accounts import audit
from bookrec.api import access
from bookrec.api.deps import OriginDep, PageDep, SessionDep, StateDep
from bookrec.api.schemas import PROBLEM, Page
from bookrec.training.registry import Registry, redis_notifier
from bookrec.training.schemas import ModelVersionOut

router = access.admin_router()

VersionPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="The model version")]


def get_registry(state: StateDep) -> Registry:
    """The worker's registry (the one its model store reads), or one on the same database."""
    registry = state.serving.models.registry
    if isinstance(registry, Registry):
        return registry
    return Registry(state.engine, state.settings.models_dir, redis_notifier(state.settings))


RegistryDep = Annotated[Registry, Depends(get_registry)]


def _actor(admin: Any) -> str:
    return f"user:{admin.user_id}"


@router.get("/models", summary="Model versions, newest first")
def list_models(registry: RegistryDep, page: PageDep) -> Page[ModelVersionOut]:
    versions = registry.page(page.offset, page.size)
    return Page(
        items=[ModelVersionOut.of(v) for v in versions],
        page=page.page,
        size=page.size,
        total=registry.count(),
    )


@router.get("/models/{version}", summary="One model version", responses={404: PROBLEM})
def get_model(registry: RegistryDep, version: VersionPath) -> ModelVersionOut:
    return ModelVersionOut.of(registry.get(version))


@router.post(
    "/models/{version}/activate",
    summary="Make a version the active one (its artifacts are verified first)",
    responses={404: PROBLEM, 409: PROBLEM},
)
def activate_model(
    registry: RegistryDep,
    session: SessionDep,
    admin: access.Admin,
    origin: OriginDep,
    version: VersionPath,
) -> ModelVersionOut:
    previous = registry.active_version()
    activated = registry.activate(version, actor=_actor(admin))
    audit.record(
        session,
        "model.activate",
        origin=origin,
        actor_user_id=admin.user_id,
        target=f"model_version:{activated.version}",
        details={"previous_version": previous, "algo": activated.algo},
    )
    return ModelVersionOut.of(activated)


@router.post(
    "/models/rollback",
    summary="Re-activate the version that was active before the current one",
    responses={409: PROBLEM},
)
def rollback_model(
    registry: RegistryDep, session: SessionDep, admin: access.Admin, origin: OriginDep
) -> ModelVersionOut:
    previous = registry.active_version()
    restored = registry.rollback(actor=_actor(admin))
    audit.record(
        session,
        "model.rollback",
        origin=origin,
        actor_user_id=admin.user_id,
        target=f"model_version:{restored.version}",
        details={"previous_version": previous, "algo": restored.algo},
    )
    return ModelVersionOut.of(restored)
