"""Authentication and authorization errors (mapped to HTTP statuses by the API)."""

from __future__ import annotations

from tradelab.errors import TradelabError


class AuthError(TradelabError):
    """Base class; ``status`` is the HTTP status the API answers with."""

    status = 400


class InvalidCredentials(AuthError):
    """Unknown user, wrong password, bad/expired/revoked token or key: one message for all."""

    status = 401

    def __init__(self, message: str = "invalid credentials") -> None:
        super().__init__(message)


class TotpRequired(InvalidCredentials):
    """Password accepted but the account needs a TOTP code."""

    def __init__(self) -> None:
        super().__init__("a TOTP code is required for this account")


class LockedOut(AuthError):
    """Too many failed logins: retry after ``retry_after`` seconds."""

    status = 429

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, int(retry_after + 0.999))
        super().__init__(f"too many failed logins; try again in {self.retry_after} s")


class Forbidden(AuthError):
    """Authenticated, but the role does not allow it."""

    status = 403


class NotFound(AuthError):
    """No such user, session or key (visible to the caller)."""

    status = 404


class Conflict(AuthError):
    """The request clashes with the current state (duplicate name, TOTP already on)."""

    status = 409


class Invalid(AuthError):
    """A well-formed request that breaks a rule (role above the creator's, bad name).

    ``field`` names the offending input the way validation errors do (``body.role``).
    """

    status = 422

    def __init__(self, message: str, field: str = "request") -> None:
        self.field = field
        super().__init__(message)


class WeakPassword(Invalid):
    """A password that does not meet the policy."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "body.password")


__all__ = ["AuthError", "Conflict", "Forbidden", "Invalid", "InvalidCredentials", "LockedOut", "NotFound",
           "TotpRequired", "WeakPassword"]
