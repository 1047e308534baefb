"""``[auth]`` and ``[api]`` settings: token lifetimes, lockout, rate limits, the JWT secret.

Once :class:`tradelab.config.Settings` grows ``auth`` and ``api`` sections
these models are used from there; until then :func:`auth_settings` and
:func:`api_settings` read the same ``TRADELAB__AUTH__*`` / ``TRADELAB__API__*``
variables themselves, so configuration written today keeps working tomorrow.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from tradelab.errors import ConfigError

AUTH_PREFIX = "TRADELAB__AUTH__"
API_PREFIX = "TRADELAB__API__"
MIN_SECRET_BYTES = 32


class AuthSettings(BaseModel):
    """Authentication policy (``[auth]``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # HS256 key; from TRADELAB__AUTH__JWT_SECRET, never from a file in the repo.
    jwt_secret: SecretStr | None = None
    jwt_issuer: str = "tradelab"
    access_ttl: float = Field(default=15 * 60.0, gt=0, le=24 * 3600, description="seconds")
    refresh_ttl: float = Field(default=7 * 24 * 3600.0, gt=0, description="seconds")
    # Refreshing slides the session's expiry; this caps it (then log in again).
    session_max_age: float = Field(default=30 * 24 * 3600.0, gt=0, description="seconds")
    lockout_threshold: int = Field(default=5, ge=1, description="failures in the window")
    lockout_window: float = Field(default=15 * 60.0, gt=0, description="seconds")
    lockout_duration: float = Field(default=15 * 60.0, gt=0, description="seconds")
    api_key_ttl_days: int = Field(default=90, ge=1, description="default key lifetime")
    api_key_max_ttl_days: int = Field(default=365, ge=1)
    password_min_length: int = Field(default=12, ge=8)
    totp_issuer: str = "tradelab"
    # argon2id cost; raising them makes the next successful login rehash.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_cost: int = Field(default=65536, ge=8, description="KiB")
    argon2_parallelism: int = Field(default=4, ge=1)


class ApiSettings(BaseModel):
    """The REST API server (``[api]``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # Token buckets, in-process: one API process only (several need a shared
    # store such as Redis, or each process allows the full rate).
    user_rate: float = Field(default=20.0, gt=0, description="requests/s per user or key")
    user_burst: int = Field(default=60, ge=1)
    ip_rate: float = Field(default=40.0, gt=0, description="requests/s per client address")
    ip_burst: int = Field(default=120, ge=1)
    login_rate: float = Field(default=0.5, gt=0, description="login attempts/s per address")
    login_burst: int = Field(default=10, ge=1)
    # Only behind a reverse proxy that sets X-Forwarded-For: otherwise clients
    # could pick their own address and dodge the per-address limits.
    trust_forwarded: bool = False
    # Worker threads for the (synchronous) database work of handlers.
    threads: int = Field(default=8, ge=1, le=200)
    cors_origins: tuple[str, ...] = ()


def _from_environ(prefix: str, environ: Mapping[str, str]) -> dict[str, Any]:
    return {k[len(prefix):].lower(): v for k, v in environ.items()
            if k.upper().startswith(prefix) and len(k) > len(prefix)}


def _section(model: type[BaseModel], name: str, settings: Any,
             environ: Mapping[str, str] | None, prefix: str) -> Any:
    found = getattr(settings, name, None) if settings is not None else None
    if isinstance(found, model):
        return found
    if found is not None:  # a config-owned section of the same shape
        return model.model_validate(found.model_dump())
    env = os.environ if environ is None else environ
    values = _from_environ(prefix, env)
    if "cors_origins" in values and isinstance(values["cors_origins"], str):
        values["cors_origins"] = tuple(o for o in values["cors_origins"].split(",") if o)
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            shown = "**********" if "secret" in field else repr(err.get("input"))
            problems.append(f"{name}.{field} = {shown} (from {prefix}{field.upper()}): {err['msg']}")
        raise ConfigError(problems) from None


def auth_settings(settings: Any = None, environ: Mapping[str, str] | None = None) -> AuthSettings:
    """``settings.auth`` if the configuration has it, else ``TRADELAB__AUTH__*`` from ``environ``."""
    return _section(AuthSettings, "auth", settings, environ, AUTH_PREFIX)


def api_settings(settings: Any = None, environ: Mapping[str, str] | None = None) -> ApiSettings:
    """``settings.api`` if the configuration has it, else ``TRADELAB__API__*`` from ``environ``."""
    return _section(ApiSettings, "api", settings, environ, API_PREFIX)


def without_sections(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` minus ``TRADELAB__AUTH__*``/``TRADELAB__API__*``.

    For :func:`tradelab.config.load_config` while ``Settings`` has no such
    sections yet (it forbids unknown ones).
    """
    from tradelab.config import Settings

    drop = [p for p, name in ((AUTH_PREFIX, "auth"), (API_PREFIX, "api"))
            if name not in Settings.model_fields]
    return {k: v for k, v in environ.items() if not any(k.upper().startswith(p) for p in drop)}


__all__ = ["ApiSettings", "AuthSettings", "api_settings", "auth_settings", "without_sections"]
