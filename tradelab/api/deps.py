"""FastAPI dependencies: services, client address, authentication, roles.

Dependencies that touch the database are plain ``def`` functions: FastAPI runs
them in its thread pool, so the synchronous store never blocks the event loop.
The others are ``async def`` on purpose: each thread-pool hop costs more than
the work they do (measured with ``bench/api.py``).

Rate limits are not dependencies: FastAPI reads the request body before it
resolves them, so :class:`tradelab.api.guard.RequestGuard` applies them first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from tradelab.api.control import ControlService
from tradelab.api.guard import client_address
from tradelab.api.ratelimit import RateLimiter
from tradelab.auth.errors import InvalidCredentials
from tradelab.auth.roles import Principal, Role
from tradelab.auth.service import AuthService
from tradelab.auth.settings import ApiSettings
from tradelab.store.store import Store


@dataclass
class Services:
    """Everything a request handler may use (``app.state.services``)."""

    store: Store
    auth: AuthService
    control: ControlService
    limiter: RateLimiter
    settings: ApiSettings
    metrics: Any
    registry: Any = None
    #: A run id -> its drift report as a dict (``None``: not served; the route answers 503).
    drift: Callable[[int], dict[str, Any]] | None = None


async def services(request: Request) -> Services:
    """The app's :class:`Services`."""
    return request.app.state.services


Svc = Annotated[Services, Depends(services)]


async def client_ip(request: Request) -> str:
    """The caller's address (``X-Forwarded-For`` only when configured as trusted)."""
    svc: Services = request.app.state.services
    return client_address(request.scope, svc.settings.trust_forwarded)


Ip = Annotated[str, Depends(client_ip)]


_bearer = HTTPBearer(auto_error=False, description="An access token from /auth/login, or an API key")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key (tlk_...)")


def principal(request: Request, svc: Svc, ip: Ip,
              bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
              api_key: Annotated[str | None, Depends(_api_key)]) -> Principal:
    """The authenticated caller; 401 without valid credentials (its rate: see the guard)."""
    credential = api_key or (bearer.credentials if bearer is not None else None)
    if not credential:
        raise InvalidCredentials("not authenticated: send Authorization: Bearer <token> or X-API-Key")
    who = svc.auth.authenticate(credential, ip=ip)
    request.state.principal = who
    return who


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting callers with at least ``role`` (403 and an audit entry otherwise)."""
    async def dependency(request: Request, svc: Svc, ip: Ip,
                         who: Annotated[Principal, Depends(principal)]) -> Principal:
        if not who.can(role):
            route = request.scope.get("route")
            action = f"{request.method} {getattr(route, 'path', request.url.path)}"
            # Rare path: the audit write goes to the thread pool, off the event loop.
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(svc.auth.require, who, role, action, ip=ip)
        return who
    dependency.__name__ = f"require_{role.name}"
    return dependency


Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Trader = Annotated[Principal, Depends(require(Role.trader))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
AnyUser = Annotated[Principal, Depends(principal)]

__all__ = ["Admin", "AnyUser", "Ip", "Services", "Svc", "Trader", "Viewer", "client_ip",
           "principal", "require", "services"]
