"""GDPR: take all your data with you, or erase your account and everything it did."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from bookrec.accounts import privacy
from bookrec.accounts.schemas import AccountExport
from bookrec.api.deps import CurrentUser, OriginDep, SessionDep
from bookrec.api.routers.auth import UNAUTHORIZED

router = APIRouter(tags=["me"])


@router.get(
    "/me/export",
    summary="Everything bookrec holds about you, as one JSON download",
    responses=UNAUTHORIZED,
)
def export_me(session: SessionDep, user: CurrentUser, response: Response) -> AccountExport:
    response.headers["Content-Disposition"] = (
        f'attachment; filename="bookrec-export-{user.user_id}.json"'
    )
    return privacy.export(session, user)


@router.delete(
    "/me",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Erase your account, ratings, shelf, events and logins (cannot be undone)",
    responses=UNAUTHORIZED,
)
def erase_me(session: SessionDep, user: CurrentUser, origin: OriginDep) -> Response:
    privacy.erase(session, user, origin)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
