"""TOTP second factor (RFC 6238 via pyotp) with the seed encrypted at rest.

The seed is shown once, at enrolment (as text and as an ``otpauth://`` URI
for QR codes) and then only ever stored as AES-256-GCM ciphertext under a key
derived (HKDF-SHA256) from the server secret. Rotating that secret therefore
invalidates enrolments: users re-enrol (documented trade-off, no extra key to
manage).
"""

from __future__ import annotations

import base64
import hmac
import secrets
from datetime import datetime

import pyotp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = "v1:"
_DRIFT_STEPS = 1  # accept the previous and next 30 s step (phone clock drift)


class TotpCipher:
    """Encrypt and decrypt TOTP seeds; the user id is bound in as associated data."""

    def __init__(self, server_secret: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"tradelab-totp-v1",
                   info=b"totp-seed-encryption").derive(server_secret.encode())
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "TotpCipher(<key hidden>)"

    def encrypt(self, seed: str, user_id: int) -> str:
        """Ciphertext of ``seed`` for storage."""
        nonce = secrets.token_bytes(12)
        ct = self._aead.encrypt(nonce, seed.encode(), str(user_id).encode())
        return _VERSION + base64.b64encode(nonce + ct).decode()

    def decrypt(self, stored: str, user_id: int) -> str | None:
        """The seed, or ``None`` if it cannot be decrypted (other key, tampering)."""
        if not stored.startswith(_VERSION):
            return None
        try:
            raw = base64.b64decode(stored[len(_VERSION):], validate=True)
            return self._aead.decrypt(raw[:12], raw[12:], str(user_id).encode()).decode()
        except Exception:
            return None


def new_seed() -> str:
    """A random base32 TOTP seed (160 bits)."""
    return pyotp.random_base32(32)


def provisioning_uri(seed: str, username: str, issuer: str) -> str:
    """The ``otpauth://`` URI authenticator apps scan."""
    return pyotp.TOTP(seed).provisioning_uri(name=username, issuer_name=issuer)


def matching_step(seed: str, code: str, now: datetime) -> int | None:
    """The time step ``code`` is valid for (within ±1 step of ``now``), else ``None``."""
    code = code.strip()
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(seed)
    current = totp.timecode(now)
    for step in range(current - _DRIFT_STEPS, current + _DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


__all__ = ["TotpCipher", "matching_step", "new_seed", "provisioning_uri"]
