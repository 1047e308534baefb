"""User names: their normal form, their allowed shape, and how an unknown one is recorded.

Shared by :mod:`tradelab.auth.service` and :mod:`tradelab.auth.admin` (which
must not import each other).
"""

from __future__ import annotations

import hashlib
import hmac
import re

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.@-]{0,63}$")
UNKNOWN_PREFIX = "unknown:"
_MARKER_HEX = 12


def normalize_username(name: str) -> str:
    """User names are case-insensitive: stored and compared in lower case."""
    return name.strip().lower()


def marker_key(secret: str) -> bytes:
    """The key of :func:`unknown_marker`, derived from the service secret.

    A separate derived key (not the secret itself) so that the markers reveal
    nothing about the key that signs tokens.
    """
    return hmac.new(secret.encode(), b"tradelab/unknown-user-marker/v1", hashlib.sha256).digest()


def unknown_marker(name: str, key: bytes) -> str:
    """How logs and the audit trail name a login attempt for a user that does not exist.

    People type passwords into the user-name field; an unknown name is
    therefore never recorded verbatim. The marker is ``unknown:`` and the first
    12 hex digits of a keyed HMAC-SHA256 of the normalized name: the same name
    always gives the same marker (repeated attempts correlate, and the
    per-name lockout still applies), but without the key it cannot be reversed
    or confirmed by hashing guesses. ``:`` is not allowed in user names, so a
    marker never names a real user.

    Parameters
    ----------
    name
        The name as typed (it is normalized first).
    key
        From :func:`marker_key`.
    """
    mac = hmac.new(key, normalize_username(name).encode(), hashlib.sha256).hexdigest()
    return UNKNOWN_PREFIX + mac[:_MARKER_HEX]


__all__ = ["UNKNOWN_PREFIX", "USERNAME_RE", "marker_key", "normalize_username", "unknown_marker"]
