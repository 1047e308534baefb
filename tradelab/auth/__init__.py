"""Authentication and authorization: users (argon2), sessions and rotating refresh
tokens, API keys, roles, TOTP, lockout and the audit log.

Framework-free: the REST API, the CLI and the dashboard all use
:class:`AuthService`. Names are imported lazily so that
``tradelab.auth.settings`` (used by :mod:`tradelab.config`) stays cheap.
"""

from __future__ import annotations

from tradelab._lazy import lazy_exports

_EXPORTS = {
    "AuthError": "errors", "Conflict": "errors", "Forbidden": "errors", "Invalid": "errors",
    "InvalidCredentials": "errors", "LockedOut": "errors", "NotFound": "errors",
    "TotpRequired": "errors", "WeakPassword": "errors",
    "Principal": "roles", "Role": "roles",
    "AuthService": "service", "TokenPair": "service", "TotpEnrollment": "service",
    "generate_secret": "service",
    "ApiSettings": "settings", "AuthSettings": "settings", "api_settings": "settings",
    "auth_settings": "settings",
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
