"""Exception handlers: one JSON shape per failure, never a secret in the body.

* 401 ``{"detail"}`` with ``WWW-Authenticate: Bearer``; 403, 404, 409 ``{"detail"}``;
* 422 ``{"detail", "errors": [{"field", "value", "expected", "type"}]}``: the
  offending value is echoed unless the field names a secret (password,
  token, code, key...), which is masked; a body that is not a JSON object is
  described by its type only;
* 405 ``{"detail"}`` with ``Allow`` listing every method of the path;
* 413 ``{"detail"}`` with ``Connection: close`` (body over ``[api] max_body_bytes``);
* 429 ``{"detail"}`` with ``Retry-After`` (rate limit or login lockout);
* 500 ``{"detail": "internal error"}``; the exception type is logged, not its
  arguments (they could hold request data).
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from tradelab.api.ratelimit import RateLimited
from tradelab.auth.errors import AuthError, Invalid, InvalidCredentials, LockedOut
from tradelab.config import is_secret_name
from tradelab.store.errors import UnknownAccountError

log = structlog.get_logger("tradelab.api")
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MASK = "**********"
_SECRET_FIELDS = ("code", "key", "credential")


def _secret_field(name: str) -> bool:
    lowered = name.lower()
    return is_secret_name(lowered) or any(w in lowered for w in _SECRET_FIELDS)


def _mask(value: Any, field: str = "") -> Any:
    if field and _secret_field(field):
        return MASK
    if isinstance(value, dict):
        return {k: _mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value[:20]]
    if isinstance(value, str) and len(value) > 200:
        return value[:200] + "..."
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)[:200]


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        field = ".".join(loc) or "request"
        secret = any(_secret_field(p) for p in loc[1:])
        whole_body = loc[:1] == ["body"] and (len(loc) == 1 or err.get("type") == "json_invalid")
        # A body that is not an object (form data, a list, broken JSON) may hold
        # anything, a password included: name its type, never echo it.
        value = (MASK if secret else
                 f"<{type(err.get('input')).__name__}>" if whole_body else _mask(err.get("input")))
        errors.append({"field": field, "value": value, "expected": str(err.get("msg", "")),
                       "type": str(err.get("type", ""))})
    fields = ", ".join(e["field"] for e in errors[:5])
    return JSONResponse({"detail": f"invalid request: {fields}", "errors": errors},
                        status_code=422)


async def _auth(_: Request, exc: AuthError) -> JSONResponse:
    if isinstance(exc, Invalid):  # same 422 shape as schema validation errors
        return JSONResponse({"detail": str(exc), "errors": [
            {"field": exc.field, "value": None, "expected": str(exc), "type": "value_error"}]},
            status_code=422)
    headers: dict[str, str] = {}
    if isinstance(exc, InvalidCredentials):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, LockedOut):
        headers["Retry-After"] = str(exc.retry_after)
    return _problem(exc.status, str(exc), headers or None)


async def _rate(_: Request, exc: RateLimited) -> JSONResponse:
    return _problem(429, str(exc), {"Retry-After": str(exc.retry_after)})


async def _unknown_account(_: Request, exc: UnknownAccountError) -> JSONResponse:
    return _problem(404, str(exc).split(";")[0])


def allowed_methods(request: Request) -> str:
    """Every method the requested path supports, for ``Allow``.

    Starlette's 405 names only the methods of the first route whose path
    matched, but FastAPI makes one route per method (``GET /users`` and
    ``POST /users`` are two): the union over all routes is the true answer.
    """
    # Asking the router itself (rather than reading route paths) also covers
    # included routers and path converters.
    routes = request.app.router.routes
    allowed = [method for method in _METHODS
               if any(route.matches({**request.scope, "method": method})[0] is Match.FULL
                      for route in routes)]
    return ", ".join(allowed)


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": allowed_methods(request)}
    return _problem(exc.status_code, str(exc.detail), headers)


async def _crash(request: Request, exc: Exception) -> JSONResponse:
    route = request.scope.get("route")
    log.error("unhandled error", error=type(exc).__name__, method=request.method,
              route=getattr(route, "path", "?"))
    return _problem(500, "internal error")


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(AuthError, _auth)  # type: ignore[arg-type]
    app.add_exception_handler(RateLimited, _rate)  # type: ignore[arg-type]
    app.add_exception_handler(UnknownAccountError, _unknown_account)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _crash)


__all__ = ["allowed_methods", "install"]
