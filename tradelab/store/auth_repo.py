"""Repository of users, sessions, refresh tokens, API keys, the audit log and strategy flags.

Like the rest of the store it speaks primitives and frozen records, never reads
a clock (every write takes ``at``) and never sees a secret in clear: callers
pass hashes, digests and ciphertexts. Check-and-set operations (rotating a
refresh token, accepting a TOTP step) are single conditional ``UPDATE``
statements, so two API processes racing on one token cannot both win.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from tradelab.store import auth_models as am
from tradelab.store.errors import StoreError
from tradelab.store.reads import AccountRef, Reader, check_choice
from tradelab.store.records import AccountRecord
from tradelab.store.store import Store
from tradelab.store.types import to_utc

U = cast(Table, am.User.__table__)
S = cast(Table, am.AuthSession.__table__)
RT = cast(Table, am.RefreshToken.__table__)
K = cast(Table, am.ApiKey.__table__)
AU = cast(Table, am.AuditEntry.__table__)
SF = cast(Table, am.StrategyFlag.__table__)


class DuplicateError(StoreError):
    """A username or key prefix that already exists."""


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user row; ``password_hash`` and ``totp_secret`` stay inside the auth layer."""

    id: int
    username: str
    role: str
    disabled: bool
    totp_enabled: bool
    created_at: datetime
    updated_at: datetime
    # Secrets stay out of repr: a record printed in a notebook or a log line must not
    # show the hash or the TOTP seed.
    password_hash: str = field(repr=False)
    totp_secret: str | None = field(repr=False)
    totp_last_step: int | None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One login session (refresh-token family)."""

    id: str
    user_id: int
    username: str
    role: str
    user_disabled: bool
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    """A stored refresh token digest and the state of its session."""

    session_id: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key (its digest included, for constant-time comparison by the auth layer)."""

    prefix: str
    name: str
    role: str
    user_id: int
    username: str
    user_role: str
    user_disabled: bool
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    key_hash: str


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit-log entry."""

    id: int
    at: datetime
    event: str
    outcome: str
    actor: str | None
    subject: str | None
    ip: str | None
    detail: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class StrategyFlagRecord:
    """Whether a strategy may act on an account, and who last said so."""

    strategy: str
    enabled: bool
    reason: str | None
    changed_by: str | None
    at: datetime


_USER_COLS = [U.c.id, U.c.username, U.c.role, U.c.disabled, U.c.totp_enabled, U.c.created_at,
              U.c.updated_at, U.c.password_hash, U.c.totp_secret, U.c.totp_last_step]
_SESSION_COLS = [S.c.id, S.c.user_id, U.c.username, U.c.role, U.c.disabled.label("user_disabled"),
                 S.c.created_at, S.c.last_used_at, S.c.expires_at, S.c.revoked_at,
                 S.c.revoked_reason, S.c.ip, S.c.user_agent]
_KEY_COLS = [K.c.prefix, K.c.name, K.c.role, K.c.user_id, U.c.username,
             U.c.role.label("user_role"), U.c.disabled.label("user_disabled"), K.c.created_by,
             K.c.created_at, K.c.expires_at, K.c.revoked_at, K.c.last_used_at, K.c.key_hash]


def _clip(value: str | None, n: int) -> str | None:
    return value[:n] if value is not None else None


class AuthRepo:
    """Auth persistence over a :class:`~tradelab.store.Store` (SQLite or PostgreSQL)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        # The store's write transaction (BEGIN IMMEDIATE on SQLite); this module
        # is part of the store package, so it may use the transaction's connection.
        with self.store.transaction() as tx:
            yield tx._conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.store.engine.connect() as conn:
            yield conn

    # -- users -----------------------------------------------------------------
    def add_user(self, username: str, password_hash: str, role: str, at: datetime) -> UserRecord:
        """Create a user; raises :class:`DuplicateError` if the name is taken."""
        role = check_choice("role", role, am.ROLES)
        at = to_utc(at)
        try:
            with self._write() as conn:
                conn.execute(insert(U).values(
                    username=username, password_hash=password_hash, role=role, disabled=False,
                    totp_secret=None, totp_enabled=False, created_at=at, updated_at=at))
        except IntegrityError:
            raise DuplicateError(f"user {username!r} already exists") from None
        user = self.get_user(username)
        assert user is not None
        return user

    def get_user(self, user: str | int) -> UserRecord | None:
        """A user by name (``str``) or id (``int``), or ``None``."""
        col = U.c.id if isinstance(user, int) else U.c.username
        with self._read() as conn:
            row = conn.execute(select(*_USER_COLS).where(col == user)).one_or_none()
        return UserRecord(**row._mapping) if row is not None else None

    def users(self) -> list[UserRecord]:
        """All users by name."""
        with self._read() as conn:
            rows = conn.execute(select(*_USER_COLS).order_by(U.c.username)).all()
        return [UserRecord(**r._mapping) for r in rows]

    def update_user(self, user_id: int, at: datetime, **values: Any) -> bool:
        """Set ``password_hash``, ``role``, ``disabled``, ``totp_secret`` or ``totp_enabled``."""
        allowed = {"password_hash", "role", "disabled", "totp_secret", "totp_enabled",
                   "totp_last_step"}
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise ValueError(f"unknown user field(s) {', '.join(unknown)}")
        if "role" in values:
            values["role"] = check_choice("role", values["role"], am.ROLES)
        with self._write() as conn:
            result = conn.execute(update(U).where(U.c.id == user_id)
                                  .values(**values, updated_at=to_utc(at)))
        return result.rowcount == 1

    def accept_totp_step(self, user_id: int, step: int) -> bool:
        """Record ``step`` as used; ``False`` if it (or a later one) was used already."""
        with self._write() as conn:
            result = conn.execute(update(U).where(
                U.c.id == user_id,
                or_(U.c.totp_last_step.is_(None), U.c.totp_last_step < step),
            ).values(totp_last_step=step))
        return result.rowcount == 1

    # -- sessions and refresh tokens -------------------------------------------
    def create_session(self, session_id: str, user_id: int, token_hash: str, *, at: datetime,
                       expires_at: datetime, ip: str | None, user_agent: str | None) -> None:
        """A new session with its first refresh token."""
        at, expires_at = to_utc(at), to_utc(expires_at)
        with self._write() as conn:
            conn.execute(insert(S).values(
                id=session_id, user_id=user_id, created_at=at, last_used_at=at,
                expires_at=expires_at, revoked_at=None, ip=_clip(ip, 64),
                user_agent=_clip(user_agent, 200)))
            conn.execute(insert(RT).values(session_id=session_id, token_hash=token_hash,
                                           issued_at=at, expires_at=expires_at, used_at=None))

    def get_refresh(self, token_hash: str) -> RefreshRecord | None:
        """The refresh token with this digest, or ``None``."""
        with self._read() as conn:
            row = conn.execute(select(RT.c.session_id, RT.c.issued_at, RT.c.expires_at,
                                      RT.c.used_at).where(RT.c.token_hash == token_hash)
                               ).one_or_none()
        return RefreshRecord(**row._mapping) if row is not None else None

    def rotate_refresh(self, old_hash: str, new_hash: str, *, at: datetime,
                       expires_at: datetime) -> bool:
        """Mark ``old_hash`` used and store ``new_hash`` in its session, atomically.

        Returns ``False`` when the old token was already used (a concurrent or
        replayed refresh): the caller must treat that as token reuse.
        """
        at = to_utc(at)
        with self._write() as conn:
            row = conn.execute(select(RT.c.session_id).where(RT.c.token_hash == old_hash)
                               ).one_or_none()
            if row is None:
                return False
            won = conn.execute(update(RT).where(RT.c.token_hash == old_hash,
                                                RT.c.used_at.is_(None)).values(used_at=at))
            if won.rowcount != 1:
                return False
            conn.execute(insert(RT).values(session_id=row.session_id, token_hash=new_hash,
                                           issued_at=at, expires_at=to_utc(expires_at),
                                           used_at=None))
            # Sliding expiry: an active session lives refresh_ttl past its last refresh.
            conn.execute(update(S).where(S.c.id == row.session_id)
                         .values(last_used_at=at, expires_at=to_utc(expires_at)))
        return True

    def get_session(self, session_id: str) -> SessionRecord | None:
        """A session joined with its user's current role and status."""
        with self._read() as conn:
            row = conn.execute(select(*_SESSION_COLS).join(U, U.c.id == S.c.user_id)
                               .where(S.c.id == session_id)).one_or_none()
        return SessionRecord(**row._mapping) if row is not None else None

    def sessions(self, user_id: int | None = None, *, active_at: datetime | None = None
                 ) -> list[SessionRecord]:
        """Sessions (of one user), newest first; only live ones when ``active_at`` is given."""
        q = select(*_SESSION_COLS).join(U, U.c.id == S.c.user_id)
        if user_id is not None:
            q = q.where(S.c.user_id == user_id)
        if active_at is not None:
            q = q.where(S.c.revoked_at.is_(None), S.c.expires_at > to_utc(active_at))
        with self._read() as conn:
            rows = conn.execute(q.order_by(S.c.created_at.desc(), S.c.id)).all()
        return [SessionRecord(**r._mapping) for r in rows]

    def revoke_session(self, session_id: str, at: datetime, reason: str) -> bool:
        """Revoke a session (and so every refresh token of its family); ``False`` if not live."""
        with self._write() as conn:
            result = conn.execute(update(S).where(S.c.id == session_id, S.c.revoked_at.is_(None))
                                  .values(revoked_at=to_utc(at), revoked_reason=reason[:100]))
        return result.rowcount == 1

    def revoke_user_sessions(self, user_id: int, at: datetime, reason: str) -> int:
        """Revoke every live session of a user; returns how many."""
        with self._write() as conn:
            result = conn.execute(update(S).where(S.c.user_id == user_id, S.c.revoked_at.is_(None))
                                  .values(revoked_at=to_utc(at), revoked_reason=reason[:100]))
        return int(result.rowcount)

    # -- API keys --------------------------------------------------------------
    def add_api_key(self, prefix: str, key_hash: str, *, name: str, role: str, user_id: int,
                    created_by: str, at: datetime, expires_at: datetime) -> ApiKeyRecord:
        """Store a new key's digest; raises :class:`DuplicateError` on a prefix collision."""
        role = check_choice("role", role, am.ROLES)
        try:
            with self._write() as conn:
                conn.execute(insert(K).values(
                    prefix=prefix, key_hash=key_hash, name=name, role=role, user_id=user_id,
                    created_by=created_by, created_at=to_utc(at), expires_at=to_utc(expires_at),
                    revoked_at=None, last_used_at=None))
        except IntegrityError:
            raise DuplicateError(f"API key prefix {prefix!r} already exists") from None
        key = self.get_api_key(prefix)
        assert key is not None
        return key

    def get_api_key(self, prefix: str) -> ApiKeyRecord | None:
        """The key with this prefix (joined with its owner), or ``None``."""
        with self._read() as conn:
            row = conn.execute(select(*_KEY_COLS).join(U, U.c.id == K.c.user_id)
                               .where(K.c.prefix == prefix)).one_or_none()
        return ApiKeyRecord(**row._mapping) if row is not None else None

    def api_keys(self, user_id: int | None = None) -> list[ApiKeyRecord]:
        """Keys (of one owner), newest first."""
        q = select(*_KEY_COLS).join(U, U.c.id == K.c.user_id)
        if user_id is not None:
            q = q.where(K.c.user_id == user_id)
        with self._read() as conn:
            rows = conn.execute(q.order_by(K.c.created_at.desc(), K.c.id.desc())).all()
        return [ApiKeyRecord(**r._mapping) for r in rows]

    def revoke_api_key(self, prefix: str, at: datetime) -> bool:
        """Revoke a key; ``False`` if unknown or already revoked."""
        with self._write() as conn:
            result = conn.execute(update(K).where(K.c.prefix == prefix, K.c.revoked_at.is_(None))
                                  .values(revoked_at=to_utc(at)))
        return result.rowcount == 1

    def touch_api_key(self, prefix: str, at: datetime) -> None:
        """Set the key's last-used time."""
        with self._write() as conn:
            conn.execute(update(K).where(K.c.prefix == prefix).values(last_used_at=to_utc(at)))

    # -- audit log -------------------------------------------------------------
    def add_audit(self, event: str, outcome: str, at: datetime, *, actor: str | None = None,
                  subject: str | None = None, ip: str | None = None,
                  detail: dict[str, Any] | None = None) -> None:
        """Append one audit entry."""
        with self._write() as conn:
            conn.execute(insert(AU).values(
                at=to_utc(at), event=event[:40],
                outcome=check_choice("outcome", outcome, am.AUDIT_OUTCOMES),
                actor=_clip(actor, 100), subject=_clip(subject, 100), ip=_clip(ip, 64),
                detail=detail))

    def audit(self, *, actor: str | None = None, event: str | None = None,
              limit: int = 100) -> list[AuditRecord]:
        """The most recent entries first, optionally of one actor or event."""
        q = select(AU)
        if actor is not None:
            q = q.where(AU.c.actor == actor)
        if event is not None:
            q = q.where(AU.c.event == event)
        with self._read() as conn:
            rows = conn.execute(q.order_by(AU.c.at.desc(), AU.c.id.desc()).limit(limit)).all()
        return [AuditRecord(**r._mapping) for r in rows]

    def count_events(self, actor: str, events: Sequence[str], since: datetime) -> int:
        """How many of ``events`` by ``actor`` happened strictly after ``since``."""
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(AU).where(
                AU.c.actor == actor, AU.c.event.in_(list(events)), AU.c.at > to_utc(since))
            ).scalar_one())

    def last_event_at(self, actor: str, events: Sequence[str]) -> datetime | None:
        """When ``actor`` last had one of ``events`` (``None`` if never)."""
        with self._read() as conn:
            value = conn.execute(select(AU.c.at).where(
                AU.c.actor == actor, AU.c.event.in_(list(events)))
                .order_by(AU.c.at.desc(), AU.c.id.desc()).limit(1)).scalar_one_or_none()
        return value

    # -- strategy flags --------------------------------------------------------
    def set_strategy_enabled(self, account: AccountRef, strategy: str, enabled: bool, *,
                             at: datetime, by: str | None, reason: str | None = None) -> None:
        """Enable or disable ``strategy`` on ``account`` (read by the engine each bar)."""
        with self.store.transaction() as tx:
            values = {"enabled": bool(enabled), "reason": _clip(reason, 500),
                      "changed_by": _clip(by, 100), "at": to_utc(at)}
            tx._conn.execute(tx._insert(SF).values(
                account_id=tx._account_id(account), strategy=strategy, **values,
            ).on_conflict_do_update(index_elements=["account_id", "strategy"], set_=values))

    def strategy_flags(self, account: AccountRef) -> dict[str, StrategyFlagRecord]:
        """Every explicit flag of the account by strategy name (absent = enabled)."""
        with self._read() as conn:
            account_id = Reader(conn)._account_id(account)
            rows = conn.execute(select(SF.c.strategy, SF.c.enabled, SF.c.reason, SF.c.changed_by,
                                       SF.c.at).where(SF.c.account_id == account_id)).all()
        return {r.strategy: StrategyFlagRecord(**r._mapping) for r in rows}


def disabled_strategies(store: Store, account: AccountRef) -> frozenset[str]:
    """Names of the strategies switched off on ``account``: the engine's per-bar hook.

    One indexed query (primary-key prefix scan); an account with no flags
    returns an empty set, so engines that never see the API behave as before.
    """
    with store.engine.connect() as conn:
        account_id = Reader(conn)._account_id(account)
        rows = conn.execute(select(SF.c.strategy).where(SF.c.account_id == account_id,
                                                        SF.c.enabled.is_(False))).all()
    return frozenset(r.strategy for r in rows)




def accounts(store: Store) -> list[AccountRecord]:
    """Every trading account by name (the store has no listing of its own yet)."""
    from tradelab.store.reads import A

    with store.engine.connect() as conn:
        rows = conn.execute(select(A).order_by(A.c.name)).all()
    return [AccountRecord(**r._mapping) for r in rows]


__all__ = ["ApiKeyRecord", "AuditRecord", "AuthRepo", "DuplicateError", "RefreshRecord",
           "SessionRecord", "StrategyFlagRecord", "UserRecord", "accounts", "disabled_strategies"]
