"""The auth facade used by the API, the CLI and the dashboard: :class:`AuthService`.

Sessions: ``login`` creates a session with a short-lived access token (JWT)
and a refresh token; ``refresh`` rotates the refresh token (the old one is
marked used) and issues a new access token. Presenting an already-rotated
refresh token again means two parties hold it (theft), so the whole session
is revoked. Every request re-reads its session, so logout, revocation, a
disabled user or a changed role take effect at once, not at token expiry.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tradelab.auth import audit as ev
from tradelab.auth.admin import AdminMixin
from tradelab.auth.audit import Auditor
from tradelab.auth.errors import (
    AuthError,
    Conflict,
    Forbidden,
    InvalidCredentials,
    LockedOut,
    NotFound,
    TotpRequired,
)
from tradelab.auth.lockout import Lockout
from tradelab.auth.names import USERNAME_RE, marker_key, normalize_username, unknown_marker
from tradelab.auth.passwords import Passwords
from tradelab.auth.roles import Principal, Role
from tradelab.auth.settings import AuthSettings
from tradelab.auth.tokens import (
    API_KEY_MARK,
    AccessTokens,
    api_key_prefix,
    digest,
    new_refresh_token,
    new_session_id,
    same_digest,
)
from tradelab.auth.totp import TotpCipher, matching_step, new_seed, provisioning_uri
from tradelab.clock import LiveClock
from tradelab.store.auth_repo import AuthRepo, SessionRecord
from tradelab.store.store import Store

_TOUCH_EVERY = timedelta(seconds=60)  # last-used writes are throttled: one per key per minute


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What login and refresh hand out. Show it to its owner only; never log it."""

    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    session_id: str
    token_type: str = "bearer"

    def __repr__(self) -> str:
        return f"TokenPair(session_id={self.session_id!r}, <tokens hidden>)"


@dataclass(frozen=True, slots=True)
class TotpEnrollment:
    """A new TOTP seed (shown once) and its provisioning URI."""

    secret: str
    uri: str

    def __repr__(self) -> str:
        return "TotpEnrollment(<secret hidden>)"


def generate_secret() -> str:
    """A fresh JWT signing secret (for ``--dev`` or for operators to copy into the env)."""
    return secrets.token_urlsafe(48)


class AuthService(AdminMixin):
    """Users, sessions, tokens, API keys, TOTP, lockout and audit over one store.

    Parameters
    ----------
    store
        A migrated :class:`~tradelab.store.Store`.
    settings
        The ``[auth]`` policy.
    secret
        The JWT signing key (also keys TOTP-seed encryption). Defaults to
        ``settings.jwt_secret``; one of them is required.
    clock
        Anything with ``now()`` (default: the wall clock); tests inject a
        :class:`~tradelab.clock.SimClock` to expire tokens without sleeping.
    """

    def __init__(self, store: Store, settings: AuthSettings | None = None, *,
                 secret: str | None = None, clock: Any = None) -> None:
        self.settings = s = settings or AuthSettings()
        key = secret or (s.jwt_secret.get_secret_value() if s.jwt_secret is not None else None)
        if not key:
            raise AuthError("no JWT secret: set TRADELAB__AUTH__JWT_SECRET (32+ bytes)")
        self.clock = clock or LiveClock()
        self.repo = AuthRepo(store)
        self.audit = Auditor(self.repo, self.clock)
        self.passwords = Passwords(s.argon2_time_cost, s.argon2_memory_cost, s.argon2_parallelism,
                                   s.password_min_length)
        self.tokens = AccessTokens(key, s.jwt_issuer, s.access_ttl)
        self.cipher = TotpCipher(key)
        self._marker_key = marker_key(key)
        self.lockout = Lockout(self.repo, self.audit, s.lockout_threshold, s.lockout_window,
                               s.lockout_duration)

    def __repr__(self) -> str:
        return f"AuthService({self.repo.store!r})"

    def now(self) -> datetime:
        """The service's clock."""
        return self.clock.now()

    # -- login / refresh / logout ---------------------------------------------
    def login(self, username: str, password: str, totp_code: str | None = None, *,
              ip: str | None = None, user_agent: str | None = None) -> TokenPair:
        """Check credentials (and TOTP when enabled) and open a session.

        Raises
        ------
        LockedOut
            The name is locked after too many failures (also raised by the
            failure that triggers the lock).
        TotpRequired
            Right password, TOTP enabled, no code given.
        InvalidCredentials
            Anything else: unknown user, wrong password or code, disabled.

        Notes
        -----
        An unknown name is recorded (audit row, log line, lockout count) as
        :meth:`unknown_actor` of it, never as typed: it is often a password
        entered into the wrong field.
        """
        name = normalize_username(username)[:64]
        now = self.now()
        user = self.repo.get_user(name)
        actor = user.username if user is not None else self.unknown_actor(name)
        wait = self.lockout.remaining(actor, now)
        if wait > 0:
            self.audit.record(ev.LOGIN_LOCKED, "denied", actor=actor, ip=ip)
            raise LockedOut(wait)
        ok, new_hash = self.passwords.verify(user.password_hash if user else None, password)
        if not ok or user is None or user.disabled:
            reason = "unknown user" if user is None else ("disabled" if ok else "bad password")
            self._fail(ev.LOGIN_FAILED, actor, now, ip, reason)
        assert user is not None
        if user.totp_enabled:
            if not totp_code:
                raise TotpRequired()
            seed = self.cipher.decrypt(user.totp_secret or "", user.id)
            step = matching_step(seed, totp_code, now) if seed else None
            if step is None or not self.repo.accept_totp_step(user.id, step):
                self._fail(ev.TOTP_FAILED, actor, now, ip, "bad or replayed code")
        if new_hash is not None:  # the cost parameters changed since this hash was made
            self.repo.update_user(user.id, now, password_hash=new_hash)
        pair = self._open_session(user.id, user.username, user.role, now, ip, user_agent)
        self.audit.record(ev.LOGIN, "ok", actor=actor, subject=pair.session_id, ip=ip)
        return pair

    def unknown_actor(self, username: str) -> str:
        """How the audit log and the logs name a login attempt for an unknown ``username``.

        ``unknown:`` and 12 hex digits of a keyed HMAC of the normalized name
        (see :func:`tradelab.auth.names.unknown_marker`): repeated attempts with
        the same name correlate, but the name itself is never stored.
        """
        return unknown_marker(username, self._marker_key)

    def _fail(self, event: str, name: str, now: datetime, ip: str | None, reason: str) -> None:
        self.audit.record(event, "failed", actor=name, ip=ip, reason=reason)
        if self.lockout.failed(name, now, ip):
            raise LockedOut(self.settings.lockout_duration)
        raise InvalidCredentials()

    def _open_session(self, user_id: int, username: str, role: str, now: datetime,
                      ip: str | None, user_agent: str | None) -> TokenPair:
        sid, refresh = new_session_id(), new_refresh_token()
        refresh_exp = now + timedelta(seconds=self.settings.refresh_ttl)
        self.repo.create_session(sid, user_id, digest(refresh), at=now, expires_at=refresh_exp,
                                 ip=ip, user_agent=user_agent)
        access, access_exp = self.tokens.issue(user_id, username, role, sid, now)
        return TokenPair(access, access_exp, refresh, refresh_exp, sid)

    def refresh(self, refresh_token: str, *, ip: str | None = None) -> TokenPair:
        """Rotate a refresh token: a new pair for a valid, unused token.

        Raises
        ------
        InvalidCredentials
            Unknown, expired or revoked token. A token that was already
            rotated also revokes its whole session (reuse detection).
        """
        now = self.now()
        old = digest(refresh_token)
        rec = self.repo.get_refresh(old)
        session = self.repo.get_session(rec.session_id) if rec is not None else None
        if rec is None or session is None:
            self.audit.record(ev.REFRESH_FAILED, "failed", ip=ip, reason="unknown token")
            raise InvalidCredentials("invalid refresh token")
        if rec.used_at is not None:
            self._reuse(session, ip)
        hard_end = session.created_at + timedelta(seconds=self.settings.session_max_age)
        problem = ("session revoked" if session.revoked_at is not None else
                   "token expired" if rec.expires_at <= now else
                   "session too old" if hard_end <= now else
                   "user disabled" if session.user_disabled else None)
        if problem is not None:
            self.audit.record(ev.REFRESH_FAILED, "failed", actor=session.username,
                              subject=session.id, ip=ip, reason=problem)
            raise InvalidCredentials("invalid refresh token")
        new = new_refresh_token()
        exp = min(now + timedelta(seconds=self.settings.refresh_ttl), hard_end)
        if not self.repo.rotate_refresh(old, digest(new), at=now, expires_at=exp):
            self._reuse(session, ip)  # lost a race with another use of the same token
        access, access_exp = self.tokens.issue(session.user_id, session.username, session.role,
                                               session.id, now)
        self.audit.record(ev.REFRESH, "ok", actor=session.username, subject=session.id, ip=ip)
        return TokenPair(access, access_exp, new, exp, session.id)

    def _reuse(self, session: SessionRecord, ip: str | None) -> None:
        self.repo.revoke_session(session.id, self.now(), "refresh token reuse")
        self.audit.record(ev.REFRESH_REUSE, "denied", actor=session.username, subject=session.id,
                          ip=ip)
        raise InvalidCredentials("refresh token reuse detected; session revoked")

    def logout(self, principal: Principal, *, ip: str | None = None) -> None:
        """End the caller's session (its access and refresh tokens stop working).

        Raises
        ------
        Conflict
            Called with an API key, which has no session to end.
        """
        if principal.session_id is None:
            # The request is well formed; the credential's state is what rules it out.
            raise Conflict("API keys have no session: revoke the key instead")
        self.repo.revoke_session(principal.session_id, self.now(), "logout")
        self.audit.record(ev.LOGOUT, "ok", actor=principal.actor, subject=principal.session_id,
                          ip=ip)

    # -- per-request authentication --------------------------------------------
    def authenticate(self, credential: str, *, ip: str | None = None) -> Principal:
        """The caller behind a bearer access token or an API key (``tlk_...``).

        Raises
        ------
        InvalidCredentials
            For anything not currently valid.
        """
        if credential.startswith(API_KEY_MARK):
            return self._authenticate_key(credential, ip)
        now = self.now()
        claims = self.tokens.verify(credential, now)
        s = self.repo.get_session(claims.session_id)
        if (s is None or s.user_id != claims.user_id or s.revoked_at is not None
                or s.expires_at <= now or s.user_disabled):
            raise InvalidCredentials("session revoked or expired")
        return Principal(s.user_id, s.username, Role.parse(s.role), session_id=s.id)

    def _authenticate_key(self, key: str, ip: str | None) -> Principal:
        now = self.now()
        prefix = api_key_prefix(key)
        rec = self.repo.get_api_key(prefix) if prefix else None
        problem = ("unknown key" if rec is None else
                   "wrong secret" if not same_digest(key, rec.key_hash) else
                   "revoked" if rec.revoked_at is not None else
                   "expired" if rec.expires_at <= now else
                   "owner disabled" if rec.user_disabled else None)
        if problem is not None or rec is None:
            self.audit.record(ev.KEY_DENIED, "denied", actor=f"key {prefix}" if prefix else None,
                              ip=ip, reason=problem or "malformed key")
            raise InvalidCredentials("invalid API key")
        if rec.last_used_at is None or now - rec.last_used_at >= _TOUCH_EVERY:
            self.repo.touch_api_key(rec.prefix, now)
        role = min(Role.parse(rec.role), Role.parse(rec.user_role))
        return Principal(rec.user_id, rec.username, role, api_key=rec.prefix)

    def require(self, principal: Principal, role: Role, action: str, *,
                ip: str | None = None) -> None:
        """Raise :class:`Forbidden` (and audit it) unless ``principal`` has ``role``."""
        if not principal.can(role):
            self.audit.record(ev.ROLE_DENIED, "denied", actor=principal.actor, subject=action,
                              ip=ip, needed=role.name, had=principal.role.name)
            raise Forbidden(f"{action} needs role {role.name}; you are {principal.role.name}")

    # -- sessions ----------------------------------------------------------------
    def sessions(self, principal: Principal, *, all_users: bool = False) -> list[SessionRecord]:
        """Live sessions of the caller (of everyone for an admin with ``all_users``)."""
        if all_users:
            self.require(principal, Role.admin, "list everyone's sessions")
        return self.repo.sessions(None if all_users else principal.user_id, active_at=self.now())

    def revoke_session(self, principal: Principal, session_id: str, *, ip: str | None = None) -> None:
        """Revoke one of the caller's sessions (any session for an admin)."""
        s = self.repo.get_session(session_id)
        if s is None or (s.user_id != principal.user_id and not principal.can(Role.admin)):
            raise NotFound(f"no session {session_id!r}")
        if not self.repo.revoke_session(session_id, self.now(), f"revoked by {principal.username}"):
            raise Conflict(f"session {session_id!r} is already revoked")
        self.audit.record(ev.SESSION_REVOKED, "ok", actor=principal.actor, subject=session_id, ip=ip)

    # -- TOTP -----------------------------------------------------------------------
    def totp_enroll(self, principal: Principal, *, ip: str | None = None) -> TotpEnrollment:
        """Start TOTP enrolment: a new seed, shown once, stored encrypted."""
        user = self.repo.get_user(principal.user_id)
        if user is None:
            raise NotFound("no such user")
        if user.totp_enabled:
            raise Conflict("TOTP is already enabled for this account")
        seed = new_seed()
        self.repo.update_user(user.id, self.now(), totp_secret=self.cipher.encrypt(seed, user.id),
                              totp_enabled=False, totp_last_step=None)
        self.audit.record(ev.TOTP_ENROLLED, "ok", actor=principal.actor, ip=ip)
        return TotpEnrollment(seed, provisioning_uri(seed, user.username, self.settings.totp_issuer))

    def totp_confirm(self, principal: Principal, code: str, *, ip: str | None = None) -> None:
        """Turn TOTP on once the user proves their authenticator produces valid codes.

        Raises
        ------
        Conflict
            No enrolment started, or TOTP already on.
        Forbidden
            A wrong or replayed code.
        LockedOut
            Too many wrong codes.
        """
        now = self.now()
        user = self.repo.get_user(principal.user_id)
        if user is None or user.totp_secret is None:
            raise Conflict("start TOTP enrolment first")
        if user.totp_enabled:
            raise Conflict("TOTP is already enabled for this account")
        seed = self.cipher.decrypt(user.totp_secret, user.id)
        step = matching_step(seed, code, now) if seed else None
        if step is None or not self.repo.accept_totp_step(user.id, step):
            self.audit.record(ev.TOTP_FAILED, "failed", actor=user.username, ip=ip,
                              reason="enrolment code")
            if self.lockout.failed(user.username, now, ip):
                raise LockedOut(self.settings.lockout_duration)
            # 403, not 422: the code is well formed, it just does not prove the seed.
            raise Forbidden("invalid TOTP code")
        self.repo.update_user(user.id, now, totp_enabled=True)
        self.audit.record(ev.TOTP_ENABLED, "ok", actor=principal.actor, ip=ip)


__all__ = ["USERNAME_RE", "AuthService", "TokenPair", "TotpEnrollment", "generate_secret",
           "normalize_username"]
