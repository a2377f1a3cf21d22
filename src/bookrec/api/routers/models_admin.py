"""Admin operations on model versions: list them, activate one, roll back.

An activation or rollback and its audit row are one unit of work (the request's): both
commit, or neither does. Every API worker switches to the new active version within seconds.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from bookrec.accounts import audit
from bookrec.accounts.models import User
from bookrec.api import access
from bookrec.api.deps import OriginDep, PageDep, RegistryDep, SessionDep
from bookrec.api.schemas import PROBLEM, Page
from bookrec.model_registry.schemas import ModelVersionOut
from bookrec.model_registry.version import ModelVersion

router = access.admin_router()

VersionPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="The model version")]


def _audit(
    session: SessionDep,
    action: str,
    admin: User,
    origin: OriginDep,
    version: ModelVersion,
    previous: int | None,
) -> None:
    audit.record(
        session,
        action,
        origin=origin,
        actor_user_id=admin.user_id,
        target=f"model_version:{version.number}",
        details={"previous_version": previous, "algo": version.algo},
    )


@router.get("/models", summary="Model versions, newest first")
def list_models(registry: RegistryDep, session: SessionDep, page: PageDep) -> Page[ModelVersionOut]:
    versions, total = registry.page(session, page.offset, page.size)
    return page.of([ModelVersionOut.of(v) for v in versions], total)


@router.get("/models/{version}", summary="One model version", responses={404: PROBLEM})
def get_model(registry: RegistryDep, session: SessionDep, version: VersionPath) -> ModelVersionOut:
    return ModelVersionOut.of(registry.get(session, version))


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
    previous = registry.active_number(session)
    activated = registry.activate(session, version, actor=f"user:{admin.user_id}")
    _audit(session, "model.activate", admin, origin, activated, previous)
    return ModelVersionOut.of(activated)


@router.post(
    "/models/rollback",
    summary="Re-activate the version that was active before the current one",
    responses={409: PROBLEM},
)
def rollback_model(
    registry: RegistryDep, session: SessionDep, admin: access.Admin, origin: OriginDep
) -> ModelVersionOut:
    previous = registry.active_number(session)
    restored = registry.rollback(session, actor=f"user:{admin.user_id}")
    _audit(session, "model.rollback", admin, origin, restored, previous)
    return ModelVersionOut.of(restored)
