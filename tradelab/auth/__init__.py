"""Authentication and authorization: users (argon2), sessions and rotating refresh
tokens, API keys, roles, TOTP, lockout and the audit log.

Framework-free: the REST API, the CLI and the dashboard all use
:class:`AuthService`. Names are imported lazily so that
``tradelab.auth.settings`` (used by :mod:`tradelab.config`) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tradelab.auth' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"tradelab.auth.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
