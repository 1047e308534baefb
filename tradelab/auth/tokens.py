"""Access tokens (JWT, HS256), refresh tokens and API keys: generation and digests.

Refresh tokens and API keys are 256-bit random values; only their SHA-256
digests are stored. A fast hash is right here (unlike passwords): the inputs
have full entropy, so there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from tradelab.auth.errors import InvalidCredentials

ALGORITHM = "HS256"
API_KEY_MARK = "tlk_"
REFRESH_MARK = "tlr_"
_LEEWAY = 5  # seconds of clock skew tolerated between API processes


def digest(token: str) -> str:
    """Hex SHA-256 of a token (what the store keeps)."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_digest(token: str, stored: str) -> bool:
    """Constant-time comparison of ``token``'s digest with a stored one."""
    return hmac.compare_digest(digest(token), stored)


def new_refresh_token() -> str:
    """A fresh refresh token (``tlr_`` + 43 url-safe characters)."""
    return REFRESH_MARK + secrets.token_urlsafe(32)


def new_session_id() -> str:
    """A public, random session id (32 hex characters)."""
    return secrets.token_hex(16)


def new_api_key() -> tuple[str, str]:
    """A new API key and its public prefix: ``tlk_<prefix>_<secret>``."""
    prefix = secrets.token_hex(6)
    return f"{API_KEY_MARK}{prefix}_{secrets.token_urlsafe(32)}", prefix


def api_key_prefix(key: str) -> str | None:
    """The prefix of a well-formed key, else ``None``."""
    if not key.startswith(API_KEY_MARK):
        return None
    prefix, sep, rest = key[len(API_KEY_MARK):].partition("_")
    if not sep or len(prefix) != 12 or not rest:
        return None
    return prefix


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """The verified claims of an access token."""

    user_id: int
    username: str
    role: str
    session_id: str
    expires_at: datetime


class AccessTokens:
    """Issue and verify HS256 access tokens.

    Parameters
    ----------
    secret
        The signing key (at least 32 bytes).
    issuer
        ``iss`` claim, checked on verification.
    ttl
        Lifetime in seconds.
    """

    def __init__(self, secret: str, issuer: str, ttl: float) -> None:
        if len(secret.encode()) < 32:
            raise ValueError("the JWT secret must be at least 32 bytes")
        self._secret = secret
        self.issuer = issuer
        self.ttl = ttl

    def __repr__(self) -> str:  # never show the key
        return f"AccessTokens(issuer={self.issuer!r}, ttl={self.ttl})"

    def issue(self, user_id: int, username: str, role: str, session_id: str,
              now: datetime) -> tuple[str, datetime]:
        """A signed token and its expiry time."""
        exp = now + timedelta(seconds=self.ttl)
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": str(user_id), "name": username, "role": role,
            "sid": session_id, "typ": "access", "jti": uuid.uuid4().hex,
            "iat": int(now.timestamp()), "exp": int(exp.timestamp()),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM), exp

    def verify(self, token: str, now: datetime) -> AccessClaims:
        """The claims of a valid token.

        Raises
        ------
        InvalidCredentials
            Bad signature, wrong algorithm or issuer, expired, or malformed.
        """
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "sid", "iss"], "verify_exp": False,
                         "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise InvalidCredentials("invalid access token") from None
        # Expiry against the injected clock (not the wall clock) so that
        # simulated time in tests and the store's notion of "now" agree.
        if claims.get("typ") != "access" or not isinstance(claims.get("exp"), int):
            raise InvalidCredentials("invalid access token")
        if now.timestamp() > claims["exp"] + _LEEWAY:
            raise InvalidCredentials("access token expired")
        try:
            user_id = int(claims["sub"])
        except (TypeError, ValueError):
            raise InvalidCredentials("invalid access token") from None
        return AccessClaims(user_id, str(claims.get("name", "")), str(claims.get("role", "")),
                            str(claims["sid"]), datetime.fromtimestamp(claims["exp"], now.tzinfo))


__all__ = ["ALGORITHM", "API_KEY_MARK", "AccessClaims", "AccessTokens", "api_key_prefix",
           "digest", "new_api_key", "new_refresh_token", "new_session_id", "same_digest"]
