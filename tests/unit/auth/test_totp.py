"""TOTP: enrolment shown once and stored encrypted, required at login, replay refused."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import text

from tradelab.auth import AuthError, AuthService, Conflict, InvalidCredentials, LockedOut, TotpRequired
from tradelab.auth.totp import TotpCipher
from tradelab.clock import SimClock

PW = "correct horse battery"


def enrolled(auth: AuthService, clock: SimClock) -> str:
    auth.add_user("alice", PW, "viewer", actor="test")
    alice = auth.authenticate(auth.login("alice", PW).access_token)
    enrolment = auth.totp_enroll(alice)
    assert enrolment.secret not in repr(enrolment)
    assert enrolment.uri.startswith("otpauth://totp/") and "alice" in enrolment.uri
    with pytest.raises(AuthError, match="invalid TOTP code"):
        auth.totp_confirm(alice, "000000" if pyotp.TOTP(enrolment.secret).at(clock.now()) != "000000"
                          else "111111")
    auth.totp_confirm(alice, pyotp.TOTP(enrolment.secret).at(clock.now()))
    with pytest.raises(Conflict):
        auth.totp_enroll(alice)
    return enrolment.secret


def test_seed_is_encrypted_at_rest(auth: AuthService, clock: SimClock) -> None:
    seed = enrolled(auth, clock)
    with auth.repo.store.engine.connect() as conn:
        stored = conn.execute(text("SELECT totp_secret FROM users")).scalar_one()
    assert seed not in stored and stored.startswith("v1:")
    cipher = TotpCipher("another-secret-of-at-least-32-bytes!")
    assert cipher.decrypt(stored, 1) is None


def test_login_requires_a_fresh_code(auth: AuthService, clock: SimClock) -> None:
    seed = enrolled(auth, clock)
    with pytest.raises(TotpRequired):
        auth.login("alice", PW)
    clock.advance(clock.now() + timedelta(seconds=30))
    code = pyotp.TOTP(seed).at(clock.now())
    assert auth.login("alice", PW, code).access_token
    with pytest.raises(InvalidCredentials):
        auth.login("alice", PW, code)  # the same code twice: replay
    clock.advance(clock.now() + timedelta(seconds=30))
    assert auth.login("alice", PW, pyotp.TOTP(seed).at(clock.now())).access_token


def test_totp_failures_count_toward_lockout(auth: AuthService, clock: SimClock) -> None:
    seed = enrolled(auth, clock)
    wrong = "123456" if pyotp.TOTP(seed).at(clock.now()) != "123456" else "654321"
    with pytest.raises(LockedOut):
        for _ in range(5):
            clock.advance(clock.now() + timedelta(seconds=1))
            with contextlib.suppress(InvalidCredentials):
                auth.login("alice", PW, wrong)
    got = [a.event for a in auth.repo.audit(actor="alice")]
    assert "lockout" in got and got.count("totp_failed") >= 4
