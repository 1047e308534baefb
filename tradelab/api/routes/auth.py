"""``/auth``: login, refresh, logout, me, sessions, TOTP enrolment."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from tradelab.api.deps import AnyUser, Ip, Svc
from tradelab.api.routes._common import AUTHED, BODY, R401, R404, R409, R429
from tradelab.api.schemas import (
    LoginRequest,
    Me,
    Problem,
    RefreshRequest,
    SessionOut,
    TokenResponse,
    TotpEnrollResponse,
    TotpVerifyRequest,
)
from tradelab.auth.service import TokenPair

router = APIRouter(prefix="/auth", tags=["auth"])


def _tokens(pair: TokenPair, ttl: float) -> TokenResponse:
    return TokenResponse(access_token=pair.access_token, expires_in=int(ttl),
                         access_expires_at=pair.access_expires_at, refresh_token=pair.refresh_token,
                         refresh_expires_at=pair.refresh_expires_at, session_id=pair.session_id)


@router.post("/login", response_model=TokenResponse, summary="Log in: access + refresh token",
             responses={**R401, **BODY, **R429},
             description="Password (and TOTP code when enabled). Repeated failures lock the "
                         "name for a while (429 with Retry-After); so does the per-address "
                         "login rate limit.")
def login(body: LoginRequest, request: Request, svc: Svc, ip: Ip) -> TokenResponse:
    pair = svc.auth.login(body.username, body.password, body.totp_code, ip=ip,
                          user_agent=request.headers.get("user-agent"))
    return _tokens(pair, svc.auth.settings.access_ttl)


@router.post("/refresh", response_model=TokenResponse, summary="Rotate the refresh token",
             responses={**R401, **BODY, **R429},
             description="Each refresh token works once. Presenting a used one again revokes "
                         "the whole session (token theft detection).")
def refresh(body: RefreshRequest, svc: Svc, ip: Ip) -> TokenResponse:
    return _tokens(svc.auth.refresh(body.refresh_token, ip=ip), svc.auth.settings.access_ttl)


@router.post("/logout", status_code=204, summary="End the current session", response_class=Response,
             responses={**AUTHED, 409: {"model": Problem, "description": "called with an API key: "
                                                                        "keys have no session"}})
def logout(svc: Svc, ip: Ip, who: AnyUser) -> Response:
    svc.auth.logout(who, ip=ip)
    return Response(status_code=204)


@router.get("/me", response_model=Me, summary="Who am I", responses=AUTHED)
def me(svc: Svc, who: AnyUser) -> Me:
    user = svc.auth.repo.get_user(who.user_id)
    return Me(username=who.username, role=who.role.name, session_id=who.session_id,  # type: ignore[arg-type]
              api_key=who.api_key, totp_enabled=bool(user and user.totp_enabled))


@router.get("/sessions", response_model=list[SessionOut], summary="Active sessions",
            responses=AUTHED)
def sessions(svc: Svc, who: AnyUser,
             all_users: Annotated[bool, Query(alias="all", description="everyone's (admin)")] = False
             ) -> list[SessionOut]:
    return [SessionOut(id=s.id, username=s.username, created_at=s.created_at,
                       last_used_at=s.last_used_at, expires_at=s.expires_at, ip=s.ip,
                       user_agent=s.user_agent, current=s.id == who.session_id)
            for s in svc.auth.sessions(who, all_users=all_users)]


@router.delete("/sessions/{session_id}", status_code=204, response_class=Response,
               summary="Revoke a session", responses={**AUTHED, **R404, **R409})
def revoke_session(session_id: str, svc: Svc, ip: Ip, who: AnyUser) -> Response:
    svc.auth.revoke_session(who, session_id, ip=ip)
    return Response(status_code=204)


@router.post("/totp/enroll", response_model=TotpEnrollResponse, summary="Start TOTP enrolment",
             responses={**AUTHED, **R404, **R409},
             description="Returns the seed once; confirm with /auth/totp/verify to turn TOTP on.")
def totp_enroll(svc: Svc, ip: Ip, who: AnyUser) -> TotpEnrollResponse:
    enrolment = svc.auth.totp_enroll(who, ip=ip)
    return TotpEnrollResponse(secret=enrolment.secret, uri=enrolment.uri)


@router.post("/totp/verify", status_code=204, response_class=Response,
             summary="Confirm TOTP enrolment with a code",
             responses={**AUTHED, **BODY, **R409,
                        403: {"model": Problem, "description": "wrong or replayed code (or role)"}})
def totp_verify(body: TotpVerifyRequest, svc: Svc, ip: Ip, who: AnyUser) -> Response:
    svc.auth.totp_confirm(who, body.code, ip=ip)
    return Response(status_code=204)


__all__ = ["router"]
