"""The audit trail: every auth and control event as a row in ``audit_log`` and a log line.

Both sinks get the same fields: ``event``, ``outcome`` (ok, failed, denied),
``actor``, ``subject``, ``ip`` and a small ``detail`` mapping. Detail keys
that name a secret are dropped before either sink sees them, so a careless
caller cannot leak a password or token into the log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from tradelab.config import is_secret_name
from tradelab.store.auth_repo import AuthRepo

log = structlog.get_logger("tradelab.auth")

LOGIN = "login"
LOGIN_FAILED = "login_failed"
LOGIN_LOCKED = "login_locked"
LOCKOUT = "lockout"
TOTP_FAILED = "totp_failed"
TOTP_ENROLLED = "totp_enrolled"
TOTP_ENABLED = "totp_enabled"
LOGOUT = "logout"
REFRESH = "refresh"
REFRESH_FAILED = "refresh_failed"
REFRESH_REUSE = "refresh_reuse"
SESSION_REVOKED = "session_revoked"
KEY_CREATED = "key_created"
KEY_REVOKED = "key_revoked"
KEY_DENIED = "key_denied"
TOKEN_DENIED = "token_denied"
USER_ADDED = "user_added"
USER_DISABLED = "user_disabled"
USER_ENABLED = "user_enabled"
ROLE_DENIED = "role_denied"
KILL_SWITCH = "kill_switch"
CLOSE_POSITION = "close_position"
STRATEGY_FLAG = "strategy_flag"
JOB_TRIGGERED = "job_triggered"


class Auditor:
    """Writes audit entries to the store and to the ``tradelab.auth`` logger.

    Parameters
    ----------
    repo
        Where rows go.
    clock
        Anything with ``now()`` returning an aware datetime.
    """

    def __init__(self, repo: AuthRepo, clock: Any) -> None:
        self.repo = repo
        self.clock = clock
        # Called with (event, outcome) after each entry, e.g. to count it in metrics.
        self.listeners: list[Callable[[str, str], None]] = []

    def record(self, event: str, outcome: str, *, actor: str | None = None,
               subject: str | None = None, ip: str | None = None, **detail: Any) -> None:
        """Append one entry (``outcome``: ok, failed or denied)."""
        clean = {k: v for k, v in detail.items() if not is_secret_name(k) and v is not None}
        self.repo.add_audit(event, outcome, self.clock.now(), actor=actor, subject=subject, ip=ip,
                            detail=clean or None)
        level = log.info if outcome == "ok" else log.warning
        level("audit", audit_event=event, outcome=outcome, actor=actor, subject=subject,
              ip=ip, **clean)
        for listener in self.listeners:
            listener(event, outcome)


__all__ = ["Auditor"]
