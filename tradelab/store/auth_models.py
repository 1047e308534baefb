"""ORM models of authentication, the audit log and runtime strategy switches.

They live on the same :class:`~tradelab.store.models.Base` (and so the same
metadata and naming convention) as the trading tables, so one Alembic history
covers both. Secrets are never stored in clear: passwords are argon2 hashes,
refresh tokens and API keys are SHA-256 digests of high-entropy random values,
and TOTP secrets are encrypted (AES-GCM) before they reach a row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tradelab.store.models import Base, _one_of

ROLES = ("viewer", "trader", "admin")
AUDIT_OUTCOMES = ("ok", "failed", "denied")


class User(Base):
    """A person (or service) who may log in to the API and dashboard."""

    __tablename__ = "users"
    __table_args__ = (_one_of("role", ROLES),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean)
    # AES-GCM ciphertext (base64) of the TOTP seed; set at enrolment, enabled
    # only once a code from it was verified, so a lost enrolment locks nobody out.
    totp_secret: Mapped[str | None] = mapped_column(String(255))
    totp_enabled: Mapped[bool] = mapped_column(Boolean)
    # Last accepted TOTP time step: a code is never accepted twice (replay).
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AuthSession(Base):
    """One login: a family of rotating refresh tokens, revoked as a whole."""

    __tablename__ = "auth_sessions"

    # Random public id: it appears in access tokens and session listings.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(100))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))


class RefreshToken(Base):
    """A refresh token by its SHA-256 digest; ``used_at`` is set when it is rotated."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("auth_sessions.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class ApiKey(Base):
    """A programmatic credential: looked up by ``prefix``, checked by digest."""

    __tablename__ = "api_keys"
    __table_args__ = (_one_of("role", ROLES),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class AuditEntry(Base):
    """One security-relevant event: who did what, from where, when, with what outcome."""

    __tablename__ = "audit_log"
    __table_args__ = (
        _one_of("outcome", AUDIT_OUTCOMES),
        # Lockout counts recent failures of one actor: keep that an index scan.
        Index("ix_audit_log_actor_event_at", "actor", "event", "at"),
        Index("ix_audit_log_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    event: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(100))
    subject: Mapped[str | None] = mapped_column(String(100))
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None]


class StrategyFlag(Base):
    """Runtime on/off switch of a strategy on an account (absent row = enabled)."""

    __tablename__ = "strategy_flags"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    strategy: Mapped[str] = mapped_column(String(100), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(String(500))
    changed_by: Mapped[str | None] = mapped_column(String(100))
    at: Mapped[datetime]


__all__ = ["AUDIT_OUTCOMES", "ROLES", "ApiKey", "AuditEntry", "AuthSession", "RefreshToken",
           "StrategyFlag", "User"]
