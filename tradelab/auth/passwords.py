"""Password hashing with argon2id (argon2-cffi), rehashed when the cost parameters change."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tradelab.auth.errors import WeakPassword

MAX_PASSWORD_LENGTH = 1024  # argon2 takes any length; a cap keeps a request from costing seconds


class Passwords:
    """Hash, verify and upgrade password hashes.

    Parameters
    ----------
    time_cost, memory_cost, parallelism
        argon2id cost parameters; hashes made with other values verify fine
        and :meth:`verify` returns a fresh hash for them (rehash on login).
    min_length
        The shortest password :meth:`check_policy` accepts.
    """

    def __init__(self, time_cost: int = 3, memory_cost: int = 65536, parallelism: int = 4,
                 min_length: int = 12) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost,
                                      parallelism=parallelism)
        self.min_length = min_length
        # Verified against for unknown users, so that "no such user" costs as
        # much time as "wrong password" and timing does not reveal user names.
        self._dummy = self._hasher.hash("tradelab-dummy-password")

    def check_policy(self, password: str) -> None:
        """Refuse passwords that are too short, too long or blank.

        Raises
        ------
        WeakPassword
            Saying what is wrong (never echoing the password).
        """
        if len(password) < self.min_length:
            raise WeakPassword(f"password too short: at least {self.min_length} characters")
        if len(password) > MAX_PASSWORD_LENGTH:
            raise WeakPassword(f"password too long: at most {MAX_PASSWORD_LENGTH} characters")
        if not password.strip():
            raise WeakPassword("password must not be blank")

    def hash(self, password: str) -> str:
        """A new argon2id hash (salted, parameters encoded in the string)."""
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> tuple[bool, str | None]:
        """Check ``password`` against ``stored_hash`` in constant-ish time.

        Returns
        -------
        (ok, new_hash)
            ``new_hash`` is set when the password was right but the hash was
            made with other parameters: store it in place of the old one.
        """
        if len(password) > MAX_PASSWORD_LENGTH:
            return False, None
        try:
            self._hasher.verify(stored_hash or self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False, None
        if stored_hash is None:
            return False, None
        return True, (self._hasher.hash(password) if self._hasher.check_needs_rehash(stored_hash)
                      else None)


__all__ = ["MAX_PASSWORD_LENGTH", "Passwords"]
