"""A login name that is no user is recorded as a keyed marker, never as typed.

People type passwords into the user-name field: such a "name" must not reach
the audit table or a log event. Known users are still recorded by name.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.unit.api.helpers import SECRET, auth_settings
from tradelab.auth import AuthService, InvalidCredentials
from tradelab.clock import SimClock
from tradelab.store import Store

PW = "correct horse battery"
TYPED = "Tr0ub4dor&3-horse-staple"  # a password, typed into the name field


def _values(row: Any) -> list[str]:
    return [str(v) for v in (row.actor, row.subject, row.ip, *(row.detail or {}).values())]


def test_unknown_names_are_recorded_as_a_marker_and_known_ones_by_name(auth: AuthService) -> None:
    auth.add_user("alice", PW, "viewer", actor="test")
    with capture_logs() as logs:
        for typed in (TYPED, TYPED.upper()):
            with pytest.raises(InvalidCredentials):
                auth.login(typed, "any password at all")
        with pytest.raises(InvalidCredentials):
            auth.login("alice", "wrong password!")
    marker = auth.unknown_actor(TYPED)
    assert re.fullmatch(r"unknown:[0-9a-f]{12}", marker)
    rows = [r for r in auth.repo.audit(limit=100) if r.event == "login_failed"]
    # Newest first; both spellings of the unknown name correlate on one marker.
    assert [(r.actor, r.outcome) for r in rows] == [("alice", "failed"), (marker, "failed"),
                                                     (marker, "failed")]
    assert rows[1].detail == {"reason": "unknown user"}
    events = [e for e in logs if e.get("audit_event") == "login_failed"]
    assert [e["actor"] for e in events] == [marker, marker, "alice"]
    everything = [v for r in auth.repo.audit(limit=100) for v in _values(r)]
    everything += [str(v) for e in logs for v in e.values()]
    assert not [v for v in everything if TYPED.lower() in v.lower()]


def test_the_marker_is_keyed_not_a_plain_hash(store: Store, clock: SimClock) -> None:
    other = AuthService(store, auth_settings(), secret="another-secret-" + "x" * 32, clock=clock)
    mine = AuthService(store, auth_settings(), secret=SECRET, clock=clock)
    assert mine.unknown_actor(TYPED) == mine.unknown_actor(f"  {TYPED.lower()} ")
    assert mine.unknown_actor(TYPED) != other.unknown_actor(TYPED)
    assert mine.unknown_actor(TYPED) != mine.unknown_actor(TYPED + "!")
    plain = hashlib.sha256(TYPED.lower().encode()).hexdigest()
    assert plain[:12] not in mine.unknown_actor(TYPED)


def test_a_locked_unknown_name_is_reported_by_its_marker(auth: AuthService) -> None:
    from tradelab.auth import LockedOut

    with capture_logs() as logs:
        for _ in range(auth.settings.lockout_threshold):
            with pytest.raises((InvalidCredentials, LockedOut)):
                auth.login(TYPED, "any password at all")
        with pytest.raises(LockedOut):
            auth.login(TYPED, "any password at all")
    marker = auth.unknown_actor(TYPED)
    kinds = [r.event for r in auth.repo.audit(actor=marker, limit=100)]
    assert kinds.count("lockout") == 1 and kinds[0] == "login_locked"
    assert {e["actor"] for e in logs if "audit_event" in e} == {marker}
