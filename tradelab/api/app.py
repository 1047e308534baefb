"""The FastAPI application factory: :func:`create_app`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import structlog
from fastapi import FastAPI

from tradelab.api import errors
from tradelab.api.control import ControlService, JobsBackend
from tradelab.api.deps import Services
from tradelab.api.docs import install_docs
from tradelab.api.guard import RequestGuard
from tradelab.api.observe import HttpMetrics, ObserveMiddleware
from tradelab.api.ratelimit import RateLimiter
from tradelab.api.routes import admin as admin_routes
from tradelab.api.routes import auth as auth_routes
from tradelab.api.routes import control as control_routes
from tradelab.api.routes import system as system_routes
from tradelab.api.routes import trading as trading_routes
from tradelab.api.routes._common import GUARDED, R413
from tradelab.auth.service import AuthService, generate_secret
from tradelab.auth.settings import ApiSettings, AuthSettings, api_settings, auth_settings
from tradelab.errors import ConfigError

if TYPE_CHECKING:
    from tradelab.store import Store

log = structlog.get_logger("tradelab.api")

DESCRIPTION = """
The tradelab REST API: trading state from the store, operator controls and
authentication.

**Authentication.** `POST /auth/login` returns a short-lived access token
(send it as `Authorization: Bearer <token>`) and a refresh token that rotates
on every `POST /auth/refresh`. Programs use API keys (`X-API-Key: tlk_...`).

**Roles.** `viewer` reads; `trader` also switches strategies, engages the
kill switch and triggers jobs; `admin` also manages users and keys and
resumes trading after a halt.

**Limits.** Requests are rate limited per user/key and per client address
(429 with `Retry-After`), before their body is read. A body larger than
`[api] max_body_bytes` (default 1 MiB) is refused with 413 without being read.
"""

TAGS = [
    {"name": "system", "description": "Probes and Prometheus metrics."},
    {"name": "auth", "description": "Login, token refresh, sessions, TOTP."},
    {"name": "admin", "description": "Users, API keys, audit log (admin)."},
    {"name": "trading", "description": "Accounts, positions, orders, fills, equity (read-only)."},
    {"name": "strategies", "description": "Strategy catalogue and runtime switches."},
    {"name": "risk", "description": "Risk status and the kill switch."},
    {"name": "runs", "description": "Engine runs."},
    {"name": "jobs", "description": "Scheduled notebook jobs."},
]


def resolve_secret(auth: AuthSettings, dev: bool = False) -> tuple[str, bool]:
    """The JWT secret, or an ephemeral one in dev mode (``(secret, ephemeral)``).

    Raises
    ------
    ConfigError
        No secret and not in dev mode, or a secret shorter than 32 bytes.
    """
    if auth.jwt_secret is not None and auth.jwt_secret.get_secret_value():
        secret = auth.jwt_secret.get_secret_value()
        if len(secret.encode()) < 32:
            raise ConfigError(["auth.jwt_secret = ********** (from TRADELAB__AUTH__JWT_SECRET): "
                               "must be at least 32 bytes"])
        return secret, False
    if dev:
        return generate_secret(), True
    raise ConfigError(["auth.jwt_secret is not set: export TRADELAB__AUTH__JWT_SECRET "
                       "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`), "
                       "or pass --dev for an ephemeral one"])


def create_app(settings: Any = None, *, store: Store | None = None, registry: Any = None,
               auth: AuthSettings | None = None, api: ApiSettings | None = None,
               jobs: JobsBackend | None = None, metrics: Any = None, clock: Any = None,
               dev: bool = False, timer: Any = None, access_log: bool = True,
               drift: Callable[[int], dict[str, Any]] | None = None) -> FastAPI:
    """Build the REST API.

    Parameters
    ----------
    settings
        A :class:`tradelab.config.Settings`: its ``[auth]`` and ``[api]`` sections
        (defaults without one; nothing is read from the environment here).
    store
        A migrated :class:`~tradelab.store.Store` (default: ``[store] url``).
    registry
        The strategy registry (default: discovered from ``settings``).
    auth, api
        Explicit sections, overriding ``settings``.
    jobs
        A job runner backend (default: read-only job history from the store).
    metrics
        A :class:`tradelab.monitor.metrics.Metrics` to expose (default: a new one).
    clock
        ``now()`` provider for token times (tests inject a ``SimClock``).
    dev
        Allow an ephemeral JWT secret when none is configured.
    timer
        Monotonic clock of the rate limiter (tests).
    access_log
        One structured log line per request.
    drift
        A run id → its drift report as a dict (``GET /runs/{id}/drift``; chosen by the
        composition root, :meth:`tradelab.app.App.api`; ``None``: that route answers 503).

    Raises
    ------
    ConfigError
        Without a JWT secret outside dev mode.
    """
    auth = auth or auth_settings(settings)
    api = api or api_settings(settings)
    secret, ephemeral = resolve_secret(auth, dev)
    from tradelab.monitor.redact import protect_logger, register_secret

    register_secret(secret)  # defence in depth: masked even if something tries to log it
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "fastapi"):
        protect_logger(name)
    if ephemeral:
        log.warning("dev mode: generated an ephemeral JWT secret; tokens die with this process "
                    "and TOTP enrolments cannot be read after a restart")
    if store is None or registry is None or metrics is None:
        # Chosen by the composition root (tradelab.app.build_api), never here.
        raise TypeError("create_app needs store, registry and metrics (see tradelab.app.build_api)")
    http_metrics = HttpMetrics(metrics)
    auth_service = AuthService(store, auth, secret=secret, clock=clock)
    auth_service.audit.listeners.append(http_metrics.on_audit)
    limiter = RateLimiter(timer) if timer is not None else RateLimiter()
    svc = Services(store=store, auth=auth_service,
                   control=ControlService(store, auth_service, registry, jobs),
                   limiter=limiter, settings=api, metrics=metrics, registry=registry,
                   drift=drift)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Fewer worker threads than anyio's default 40: the handlers are short
        # database calls, and 40 threads fighting over the GIL and a small
        # connection pool collapse throughput under load (see bench/api.py).
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = api.threads
        yield

    # docs_url/redoc_url None: FastAPI's own pages load their assets from CDNs;
    # install_docs serves the same pages from local files (offline machines).
    app = FastAPI(title="tradelab API", version="1", description=DESCRIPTION, openapi_tags=TAGS,
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    install_docs(app)
    app.state.services = svc
    errors.install(app)
    app.include_router(system_routes.router, responses=R413)
    for router in (auth_routes.router, admin_routes.router, trading_routes.router,
                   control_routes.router):
        app.include_router(router, responses=GUARDED)
    _serve_policy_bounds(app, auth)
    # Innermost first: the guard sees every request before the app reads a byte of
    # its body; the observer outside it counts and logs the guard's 413s and 429s.
    app.add_middleware(RequestGuard, services=svc)
    app.add_middleware(ObserveMiddleware, metrics=http_metrics, access_log=access_log)
    if api.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(api.cors_origins),
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-API-Key"])
    return app


def _serve_policy_bounds(app: FastAPI, auth: AuthSettings) -> None:
    """Write the configured ``[auth]`` bounds into the served OpenAPI schema.

    The request models declare the hard ceilings; the service enforces the
    configured ones (422 beyond them). The schema must promise exactly what is
    enforced, so the configured values replace the ceilings in the document.
    """
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            models = schema["components"]["schemas"]
            for branch in models["ApiKeyCreate"]["properties"]["ttl_days"]["anyOf"]:
                if branch.get("type") == "integer":
                    branch["maximum"] = auth.api_key_max_ttl_days
            models["UserCreate"]["properties"]["password"]["minLength"] = auth.password_min_length
            return schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["create_app", "resolve_secret"]
