"""User and API-key administration (mixed into :class:`~tradelab.auth.service.AuthService`).

``actor`` is either the calling :class:`~tradelab.auth.roles.Principal` (the
API and dashboard: admin role required) or a plain string naming a local
operator (the CLI: whoever can open the database is trusted as admin).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from tradelab.auth import audit as ev
from tradelab.auth.errors import Conflict, Forbidden, Invalid, NotFound
from tradelab.auth.names import USERNAME_RE, normalize_username
from tradelab.auth.roles import Principal, Role
from tradelab.auth.tokens import digest, new_api_key
from tradelab.store.auth_repo import ApiKeyRecord, DuplicateError, UserRecord

if TYPE_CHECKING:
    from tradelab.auth.audit import Auditor
    from tradelab.auth.passwords import Passwords
    from tradelab.auth.settings import AuthSettings
    from tradelab.store.auth_repo import AuthRepo

Actor = Principal | str


class AdminMixin:
    """Administration methods; expects the attributes :class:`AuthService` sets."""

    repo: AuthRepo
    passwords: Passwords
    audit: Auditor
    settings: AuthSettings

    # Provided by AuthService, the class this mixin is combined with.
    now: Callable[[], datetime]
    require: Callable[..., None]

    def _admin(self, actor: Actor, action: str, ip: str | None) -> tuple[str, Role]:
        if isinstance(actor, Principal):
            self.require(actor, Role.admin, action, ip=ip)
            return actor.actor, actor.role
        return actor, Role.admin

    def _user(self, username: str) -> UserRecord:
        user = self.repo.get_user(normalize_username(username))
        if user is None:
            raise NotFound(f"no user {username!r}")
        return user

    # -- users ---------------------------------------------------------------------
    def add_user(self, username: str, password: str, role: str | Role = Role.viewer, *,
                 actor: Actor, ip: str | None = None) -> UserRecord:
        """Create a user with an argon2-hashed password.

        Raises
        ------
        Invalid
            Bad user name or role; :class:`WeakPassword` for a weak password.
        Conflict
            The name is taken.
        """
        who, _ = self._admin(actor, "add users", ip)
        name = normalize_username(username)
        if not USERNAME_RE.match(name):
            raise Invalid(f"username {username!r}: 1-64 characters, letters, digits and _.@- ; "
                          "starting with a letter or digit", "body.username")
        try:
            parsed = Role.parse(role)
        except ValueError as exc:
            raise Invalid(str(exc), "body.role") from None
        self.passwords.check_policy(password)
        try:
            user = self.repo.add_user(name, self.passwords.hash(password), parsed.name, self.now())
        except DuplicateError:
            raise Conflict(f"user {name!r} already exists") from None
        self.audit.record(ev.USER_ADDED, "ok", actor=who, subject=name, ip=ip, role=parsed.name)
        return user

    def users(self, actor: Actor) -> list[UserRecord]:
        """Every user (admin only)."""
        self._admin(actor, "list users", None)
        return self.repo.users()

    def set_disabled(self, username: str, disabled: bool = True, *, actor: Actor,
                     ip: str | None = None) -> UserRecord:
        """Disable (or re-enable) a user; disabling revokes their sessions at once.

        Raises
        ------
        NotFound
            No such user.
        Conflict
            An admin tried to disable themself (the last way back in).
        """
        who, _ = self._admin(actor, "disable users", ip)
        user = self._user(username)
        if disabled and isinstance(actor, Principal) and actor.user_id == user.id:
            # A state conflict, not a malformed request: the same call is fine from another admin.
            raise Conflict("you cannot disable yourself")
        now = self.now()
        self.repo.update_user(user.id, now, disabled=disabled)
        if disabled:
            self.repo.revoke_user_sessions(user.id, now, "user disabled")
        self.audit.record(ev.USER_DISABLED if disabled else ev.USER_ENABLED, "ok", actor=who,
                          subject=user.username, ip=ip)
        return self._user(user.username)

    # -- API keys ------------------------------------------------------------------
    def create_api_key(self, owner: str, name: str, role: str | Role, *, actor: Actor,
                       ttl_days: int | None = None, ip: str | None = None
                       ) -> tuple[str, ApiKeyRecord]:
        """A new API key for ``owner``; the key itself is returned once and never again.

        The key's role may not exceed the creator's role nor the owner's.

        Raises
        ------
        Forbidden
            The role is above the creator's or the owner's.
        Invalid
            Unknown role, or lifetime out of range.
        NotFound
            No such owner.
        """
        who, creator_role = self._admin(actor, "create API keys", ip)
        user = self._user(owner)
        try:
            parsed = Role.parse(role)
        except ValueError as exc:
            raise Invalid(str(exc), "body.role") from None
        ceiling = min(creator_role, Role.parse(user.role))
        if parsed > ceiling:
            self.audit.record(ev.KEY_CREATED, "denied", actor=who, subject=user.username, ip=ip,
                              role=parsed.name, ceiling=ceiling.name)
            raise Forbidden(f"role {parsed.name} is above {ceiling.name}, the most this key may have")
        days = ttl_days or self.settings.api_key_ttl_days
        if not 1 <= days <= self.settings.api_key_max_ttl_days:
            raise Invalid(f"ttl_days={days}: expected 1 to {self.settings.api_key_max_ttl_days}",
                          "body.ttl_days")
        now = self.now()
        for _ in range(3):  # 48-bit random prefixes: a collision is astronomically rare
            key, prefix = new_api_key()
            try:
                rec = self.repo.add_api_key(prefix, digest(key), name=name[:100], role=parsed.name,
                                            user_id=user.id, created_by=who[:100], at=now,
                                            expires_at=now + timedelta(days=days))
                break
            except DuplicateError:
                continue
        else:  # pragma: no cover
            raise Conflict("could not allocate a unique key prefix")
        self.audit.record(ev.KEY_CREATED, "ok", actor=who, subject=prefix, ip=ip,
                          owner=user.username, role=parsed.name, days=days)
        return key, rec

    def api_keys(self, actor: Actor, owner: str | None = None) -> list[ApiKeyRecord]:
        """Keys (of one owner), newest first (admin only)."""
        self._admin(actor, "list API keys", None)
        return self.repo.api_keys(self._user(owner).id if owner else None)

    def revoke_api_key(self, prefix: str, *, actor: Actor, ip: str | None = None) -> None:
        """Revoke a key by its prefix."""
        who, _ = self._admin(actor, "revoke API keys", ip)
        if self.repo.get_api_key(prefix) is None:
            raise NotFound(f"no API key {prefix!r}")
        if not self.repo.revoke_api_key(prefix, self.now()):
            raise Conflict(f"API key {prefix!r} is already revoked")
        self.audit.record(ev.KEY_REVOKED, "ok", actor=who, subject=prefix, ip=ip)


__all__ = ["Actor", "AdminMixin"]
