"""Brute-force lockout computed from the audit log.

``threshold`` failed logins (wrong password or wrong TOTP code) by one user
name within ``window`` seconds lock that name for ``duration`` seconds. The
count restarts after a successful login or a lockout. Names that do not exist
lock exactly like real ones, so the lockout cannot be used to discover users;
and because the state is the audit log itself, every API process sharing the
database enforces the same lock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tradelab.auth.audit import LOCKOUT, LOGIN, LOGIN_FAILED, TOTP_FAILED, Auditor
from tradelab.store.auth_repo import AuthRepo


class Lockout:
    """Decide whether a user name is locked, and lock it after too many failures."""

    def __init__(self, repo: AuthRepo, auditor: Auditor, threshold: int, window: float,
                 duration: float) -> None:
        self.repo, self.auditor = repo, auditor
        self.threshold = threshold
        self.window = timedelta(seconds=window)
        self.duration = timedelta(seconds=duration)

    def remaining(self, name: str, now: datetime) -> float:
        """Seconds until ``name`` may try again (0 when not locked)."""
        last = self.repo.last_event_at(name, [LOCKOUT])
        if last is None or now >= last + self.duration:
            return 0.0
        return (last + self.duration - now).total_seconds()

    def failed(self, name: str, now: datetime, ip: str | None) -> bool:
        """Count a failure already written to the audit log; lock if over the threshold.

        Returns
        -------
        bool
            Whether this failure locked the name.
        """
        since = now - self.window
        for event in (LOGIN, LOCKOUT):
            last = self.repo.last_event_at(name, [event])
            if last is not None and last > since:
                since = last
        failures = self.repo.count_events(name, [LOGIN_FAILED, TOTP_FAILED], since)
        if failures < self.threshold:
            return False
        self.auditor.record(LOCKOUT, "denied", actor=name, ip=ip, failures=failures,
                            seconds=int(self.duration.total_seconds()))
        return True


__all__ = ["Lockout"]
