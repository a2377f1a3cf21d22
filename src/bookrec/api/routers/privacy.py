"""GDPR: take all your data with you, or erase your account and everything it did."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from bookrec.accounts import privacy, service
from bookrec.accounts.models import User
from bookrec.accounts.passwords import MAX_PASSWORD_LENGTH
from bookrec.accounts.schemas import AccountExport
from bookrec.api.deps import AuthenticatorDep, CurrentUser, OriginDep, SessionDep, StateDep
from bookrec.api.limits import login_email_limit
from bookrec.api.routers.auth import UNAUTHORIZED
from bookrec.api.schemas import PROBLEM
from bookrec.db.session import unit_of_work
from bookrec.experiments import service as experiments
from bookrec.serving.erasure import forget_reader

router = APIRouter(tags=["me"])


@router.get(
    "/me/export",
    summary="Everything bookrec holds about you, as one JSON download (streamed)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The export, sent as it is read",
            "content": {"application/json": {"schema": AccountExport.model_json_schema()}},
        },
        **UNAUTHORIZED,
    },
)
def export_me(state: StateDep, user: CurrentUser) -> StreamingResponse:
    def document() -> Iterator[bytes]:
        # a unit of work of its own: the request's ends before the body is sent
        with unit_of_work(state.sessions) as session:
            account = session.get(User, user.user_id)
            if account is not None:
                more = [experiments.export_section(account.reader_id)]
                yield from privacy.export(session, account, more)

    return StreamingResponse(
        document(),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="bookrec-export-{user.user_id}.json"'
        },
    )


class EraseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(
        min_length=1, max_length=MAX_PASSWORD_LENGTH, description="Your password, asked again"
    )


@router.delete(
    "/me",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Erase your account, ratings, shelf, events and logins (cannot be undone; "
    "asks for your password)",
    responses={**UNAUTHORIZED, 403: {**PROBLEM, "description": "Wrong password"}},
)
def erase_me(
    request: Request,
    state: StateDep,
    session: SessionDep,
    auth: AuthenticatorDep,
    user: CurrentUser,
    origin: OriginDep,
    body: EraseRequest,
) -> Response:
    login_email_limit(request, state, user.email)  # a password check: limited like a login
    service.confirm_password(session, auth, user, body.password, origin)
    reader_id = user.reader_id
    privacy.erase(session, user)
    forget_reader(session, state.serving, reader_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
