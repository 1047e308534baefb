"""The request guard: rate limits and the body-size cap, answered before any body byte is read.

FastAPI reads (and parses) a request's whole body before it resolves a
route's dependencies, so limits written as dependencies come too late: an
unauthenticated client could make the process hold any number of huge bodies
while the rate limiter waits its turn. This pure ASGI middleware runs first,
on every request, and looks only at the request line and headers:

1. rate limits (429 with ``Retry-After``): per client address on every route
   but the probes, the much smaller login bucket on ``POST /auth/login`` and
   ``/auth/refresh``, and per caller when the request carries a credential
   that can be checked without the database (see :meth:`RequestGuard.caller`);
2. a ``Content-Length`` over ``[api] max_body_bytes``: 413 at once, and the
   connection is closed so the rest is never read;
3. a body without a length (chunked): bytes are counted as the application
   pulls them and the request fails with 413 as soon as they pass the limit,
   so at most ``max_body_bytes`` (plus one network chunk) is ever held.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from tradelab.api.ratelimit import RateLimited
from tradelab.auth.errors import InvalidCredentials
from tradelab.auth.tokens import API_KEY_MARK, digest

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Liveness and readiness must answer an orchestrator however busy the API is.
PROBES = frozenset({"/health", "/ready"})
LOGIN_PATHS = frozenset({"/auth/login", "/auth/refresh"})
_CLOSE = {"Connection": "close"}


def too_large(limit: int) -> str:
    """The ``detail`` of a 413."""
    return f"request body too large: at most {limit} bytes"


def client_address(scope: Scope, trust_forwarded: bool) -> str:
    """The caller's address (``X-Forwarded-For`` only when configured as trusted)."""
    if trust_forwarded:
        forwarded = Headers(scope=scope).get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip()[:64]
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def credential(headers: Headers) -> str | None:
    """The API key or bearer token a request carries, if any (never logged)."""
    key = headers.get("x-api-key")
    if key:
        return key
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def declared_length(headers: Headers) -> int:
    """The ``Content-Length`` (0 when absent or unreadable: the bytes are counted instead)."""
    try:
        return int(headers.get("content-length", "0"))
    except ValueError:
        return 0


class RequestGuard:
    """Rate limits and the body cap in front of the application (see the module doc).

    Parameters
    ----------
    app
        The wrapped ASGI application.
    services
        The app's :class:`~tradelab.api.deps.Services` (limiter, ``[api]``
        settings, the auth service that verifies access tokens).
    """

    def __init__(self, app: Any, services: Any) -> None:
        self.app = app
        self.services = services

    def caller(self, token: str) -> str | None:
        """The per-caller bucket of a credential, decided without the database.

        An access token counts against its user once its signature and expiry
        check out (a forged or stale one gets no bucket: the route answers 401).
        An API key counts against a bucket named by its digest, not by its
        public prefix: someone who only knows the prefix cannot drain the real
        key's bucket, and every wrong key is refused with 401 anyway.
        """
        if token.startswith(API_KEY_MARK):
            return f"key:{digest(token)[:32]}"
        auth = self.services.auth
        try:
            claims = auth.tokens.verify(token, auth.now())
        except InvalidCredentials:
            return None
        return f"user:{claims.user_id}"

    def limit(self, scope: Scope, headers: Headers) -> None:
        """Take a token from every bucket this request counts against.

        Raises
        ------
        RateLimited
            When one of them is empty.
        """
        svc = self.services
        s = svc.settings
        ip = client_address(scope, s.trust_forwarded)
        svc.limiter.check(f"ip:{ip}", s.ip_rate, s.ip_burst, "client address")
        if scope["method"] == "POST" and scope["path"] in LOGIN_PATHS:
            svc.limiter.check(f"login:{ip}", s.login_rate, s.login_burst, "login")
        token = credential(headers)
        bucket = self.caller(token) if token else None
        if bucket is not None:
            svc.limiter.check(bucket, s.user_rate, s.user_burst, "user")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = self.services.settings.max_body_bytes
        try:
            if scope["path"] not in PROBES:
                self.limit(scope, headers)
        except RateLimited as exc:
            await JSONResponse({"detail": str(exc)}, status_code=429,
                               headers={"Retry-After": str(exc.retry_after)})(scope, receive, send)
            return
        if declared_length(headers) > limit:
            # Closing the connection is what keeps the body unread: on a kept-alive
            # connection the server would have to drain it before the next request.
            await JSONResponse({"detail": too_large(limit)}, status_code=413,
                               headers=_CLOSE)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI re-raises HTTPException from body reading, and the
                    # app's handler turns it into the usual JSON problem.
                    raise HTTPException(413, too_large(limit), headers=_CLOSE)
            return message

        await self.app(scope, counted, send)


__all__ = ["LOGIN_PATHS", "PROBES", "RequestGuard", "client_address", "credential", "declared_length",
           "too_large"]
