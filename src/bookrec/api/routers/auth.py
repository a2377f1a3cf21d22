"""Accounts and tokens: register, log in, refresh, log out, who am I."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Cookie, Depends, Request, Response, status

from bookrec.accounts import service, tokens
from bookrec.accounts.schemas import Credentials, RefreshRequest, TokenPair, UserOut
from bookrec.api.deps import (
    AuthenticatedDep,
    AuthenticatorDep,
    CurrentUser,
    OriginDep,
    SessionDep,
    StateDep,
)
from bookrec.api.limits import (
    check_login_account_limit,
    count_login_failure,
    login_email_limit,
    login_ip_limit,
    register_ip_limit,
)
from bookrec.api.schemas import PROBLEM
from bookrec.db.base import utcnow
from bookrec.errors import Unauthorized

router = APIRouter(tags=["auth"])

#: The cookie a successful login leaves on the device (see `tokens.issue_device_token`).
DEVICE_COOKIE = "bookrec_device"
AUTH_PATH = "/api/v1/auth"

UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {**PROBLEM, "description": "Missing, invalid or expired credentials"}
}
RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {**PROBLEM, "description": "Too many attempts: wait `Retry-After` seconds"}
}


def _pair(issued: service.IssuedTokens) -> TokenPair:
    return TokenPair(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
    )


@router.post(
    "/auth/register",
    status_code=status.HTTP_201_CREATED,
    summary="Create a reader account",
    responses={409: {**PROBLEM, "description": "Email taken"}, 422: PROBLEM, **RATE_LIMITED},
    dependencies=[Depends(register_ip_limit)],
)
def register(
    session: SessionDep, auth: AuthenticatorDep, origin: OriginDep, body: Credentials
) -> UserOut:
    user = service.register(session, auth, body.email, body.password, origin=origin)
    return UserOut.model_validate(user)


@router.post(
    "/auth/login",
    summary="Trade email and password for tokens",
    responses={**UNAUTHORIZED, **RATE_LIMITED},
    dependencies=[Depends(login_ip_limit)],
)
def login(
    request: Request,
    response: Response,
    state: StateDep,
    session: SessionDep,
    auth: AuthenticatorDep,
    origin: OriginDep,
    body: Credentials,
    device: Annotated[
        str | None,
        Cookie(alias=DEVICE_COOKIE, description="Set by an earlier login on this device"),
    ] = None,
) -> TokenPair:
    # counted before the password check, so failed attempts (401s) use up the allowance too
    login_email_limit(request, state, body.email)
    account = service.email_key(body.email)
    known_device = tokens.device_knows(auth.tokens, device, account)
    if not known_device:
        check_login_account_limit(state, body.email)
    try:
        issued = service.login(session, auth, body.email, body.password, origin)
    except Unauthorized:
        if not known_device:
            count_login_failure(state, body.email)
        raise
    response.set_cookie(
        DEVICE_COOKIE,
        tokens.issue_device_token(auth.tokens, account, utcnow()),
        max_age=int(tokens.DEVICE_TTL.total_seconds()),
        path=AUTH_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return _pair(issued)


@router.post(
    "/auth/refresh",
    summary="Trade a refresh token for new tokens (once; reuse ends the login)",
    responses=UNAUTHORIZED,
)
def refresh(
    session: SessionDep, auth: AuthenticatorDep, origin: OriginDep, body: RefreshRequest
) -> TokenPair:
    return _pair(service.refresh(session, auth, body.refresh_token, origin))


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End this login: its refresh and access tokens stop working",
    responses=UNAUTHORIZED,
)
def logout(session: SessionDep, caller: AuthenticatedDep, origin: OriginDep) -> Response:
    service.logout(session, caller, origin)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", summary="The account you are logged in as", responses=UNAUTHORIZED)
def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)
