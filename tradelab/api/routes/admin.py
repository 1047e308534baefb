"""Admin routes: users, API keys, audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from tradelab.api.deps import Admin, Ip, Svc
from tradelab.api.routes._common import AUTHED, BODY, R404, R409
from tradelab.api.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, AuditOut, UserCreate, UserOut
from tradelab.store.auth_repo import ApiKeyRecord, UserRecord

router = APIRouter(tags=["admin"])


def _user(u: UserRecord) -> UserOut:
    return UserOut(username=u.username, role=u.role, disabled=u.disabled,  # type: ignore[arg-type]
                   totp_enabled=u.totp_enabled, created_at=u.created_at)


def _key(k: ApiKeyRecord) -> ApiKeyOut:
    return ApiKeyOut(prefix=k.prefix, name=k.name, role=k.role, owner=k.username,  # type: ignore[arg-type]
                     created_by=k.created_by, created_at=k.created_at, expires_at=k.expires_at,
                     revoked_at=k.revoked_at, last_used_at=k.last_used_at)


@router.get("/users", response_model=list[UserOut], summary="List users", responses=AUTHED)
def list_users(svc: Svc, who: Admin) -> list[UserOut]:
    return [_user(u) for u in svc.auth.users(who)]


@router.post("/users", response_model=UserOut, status_code=201, summary="Add a user",
             responses={**AUTHED, **BODY, **R409})
def add_user(body: UserCreate, svc: Svc, ip: Ip, who: Admin) -> UserOut:
    return _user(svc.auth.add_user(body.username, body.password, body.role, actor=who, ip=ip))


@router.post("/users/{username}/disable", response_model=UserOut, summary="Disable a user",
             description="Revokes the user's sessions at once; their API keys stop working. "
                         "Admins cannot disable themselves (409).",
             responses={**AUTHED, **R404, **R409})
def disable_user(username: str, svc: Svc, ip: Ip, who: Admin) -> UserOut:
    return _user(svc.auth.set_disabled(username, True, actor=who, ip=ip))


@router.post("/users/{username}/enable", response_model=UserOut, summary="Re-enable a user",
             responses={**AUTHED, **R404})
def enable_user(username: str, svc: Svc, ip: Ip, who: Admin) -> UserOut:
    return _user(svc.auth.set_disabled(username, False, actor=who, ip=ip))


@router.get("/apikeys", response_model=list[ApiKeyOut], summary="List API keys",
            responses={**AUTHED, **R404})
def list_keys(svc: Svc, who: Admin,
              owner: Annotated[str | None, Query(max_length=64)] = None) -> list[ApiKeyOut]:
    return [_key(k) for k in svc.auth.api_keys(who, owner)]


@router.post("/apikeys", response_model=ApiKeyCreated, status_code=201, summary="Create an API key",
             description="The key is in this response only; store it now. Its role may not "
                         "exceed yours or its owner's (403).", responses={**AUTHED, **BODY, **R404})
def create_key(body: ApiKeyCreate, svc: Svc, ip: Ip, who: Admin) -> ApiKeyCreated:
    key, rec = svc.auth.create_api_key(body.owner or who.username, body.name, body.role, actor=who,
                                       ttl_days=body.ttl_days, ip=ip)
    return ApiKeyCreated(key=key, **_key(rec).model_dump())


@router.delete("/apikeys/{prefix}", status_code=204, response_class=Response,
               summary="Revoke an API key", responses={**AUTHED, **R404, **R409})
def revoke_key(prefix: str, svc: Svc, ip: Ip, who: Admin) -> Response:
    svc.auth.revoke_api_key(prefix, actor=who, ip=ip)
    return Response(status_code=204)


@router.get("/audit", response_model=list[AuditOut], summary="Audit log, newest first",
            responses=AUTHED)
def audit(svc: Svc, _: Admin, actor: Annotated[str | None, Query(max_length=100)] = None,
          event: Annotated[str | None, Query(max_length=40)] = None,
          limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AuditOut]:
    return [AuditOut.model_validate(a, from_attributes=True)
            for a in svc.auth.repo.audit(actor=actor, event=event, limit=limit)]
