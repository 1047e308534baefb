"""``[auth]`` and ``[api]`` settings: token lifetimes, lockout, rate limits, the JWT secret.

Both are sections of :class:`tradelab.config.Settings` (``[auth]``/``[api]`` in
the TOML files, ``TRADELAB__AUTH__*``/``TRADELAB__API__*`` in the environment,
merged by :func:`tradelab.config.load_config`). Code that needs them is given
the settings object; nothing here reads the environment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

if TYPE_CHECKING:
    from tradelab.config import Settings

MIN_SECRET_BYTES = 32
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


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
    # Ceilings match the request schema (3650 days; 1024-character passwords).
    api_key_max_ttl_days: int = Field(default=365, ge=1, le=3650)
    password_min_length: int = Field(default=12, ge=8, le=1024)
    totp_issuer: str = "tradelab"
    # argon2id cost; raising them makes the next successful login rehash.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_cost: int = Field(default=65536, ge=8, description="KiB")
    argon2_parallelism: int = Field(default=4, ge=1)

    @model_validator(mode="after")
    def _default_ttl_within_max(self) -> AuthSettings:
        # Otherwise every key created without ttl_days would be refused.
        if self.api_key_ttl_days > self.api_key_max_ttl_days:
            raise ValueError(f"api_key_ttl_days={self.api_key_ttl_days} is above "
                             f"api_key_max_ttl_days={self.api_key_max_ttl_days}")
        return self


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
    # Larger request bodies are refused with 413 before a byte of them is read
    # (by Content-Length, or counted as a chunked body streams in).
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024,
                                description="largest request body accepted, bytes")


def auth_settings(settings: Settings | None) -> AuthSettings:
    """The ``[auth]`` section of the collected configuration (defaults without one).

    Nothing is read from the environment here: :func:`tradelab.config.load_config`
    has already merged ``TRADELAB__AUTH__*`` into ``settings``.
    """
    return settings.auth if settings is not None else AuthSettings()


def api_settings(settings: Settings | None) -> ApiSettings:
    """The ``[api]`` section of the collected configuration (defaults without one).

    Nothing is read from the environment here: :func:`tradelab.config.load_config`
    has already merged ``TRADELAB__API__*`` into ``settings``.
    """
    return settings.api if settings is not None else ApiSettings()


__all__ = ["MIN_SECRET_BYTES", "ApiSettings", "AuthSettings", "api_settings", "auth_settings"]
