"""Roles (ordered privileges) and the authenticated :class:`Principal`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Role(IntEnum):
    """``viewer`` < ``trader`` < ``admin``: each role can do everything the lower ones can."""

    viewer = 1
    trader = 2
    admin = 3

    @classmethod
    def parse(cls, value: str | Role) -> Role:
        """A role from its name.

        Raises
        ------
        ValueError
            Naming the allowed roles.
        """
        if isinstance(value, Role):
            return value
        try:
            return cls[str(value)]
        except KeyError:
            raise ValueError(f"role={value!r}: expected one of {', '.join(r.name for r in cls)}") from None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user through a session, or an API key.

    ``role`` is the effective role: for a session the user's *current* role
    (read from the store on each request), for a key the lower of the key's
    role and its owner's current role.
    """

    user_id: int
    username: str
    role: Role
    session_id: str | None = None
    api_key: str | None = None  # the key's public prefix, never the key

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"{self.username} (key {self.api_key})" if self.api_key else self.username

    def can(self, role: Role) -> bool:
        """Whether this caller has at least ``role``."""
        return self.role >= role


__all__ = ["Principal", "Role"]
