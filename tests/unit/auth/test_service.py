"""AuthService: sessions, refresh rotation and reuse, lockout, API keys, users, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from tests.unit.api.helpers import FAST, SECRET
from tradelab.auth import (
    AuthService,
    AuthSettings,
    Conflict,
    Forbidden,
    Invalid,
    InvalidCredentials,
    LockedOut,
    Role,
    WeakPassword,
)
from tradelab.clock import SimClock
from tradelab.store import Store

PW = "correct horse battery"


def step(clock: SimClock, seconds: float) -> None:
    clock.advance(clock.now() + timedelta(seconds=seconds))


def events(auth: AuthService, actor: str | None = None) -> list[tuple[str, str]]:
    return [(a.event, a.outcome) for a in reversed(auth.repo.audit(actor=actor, limit=1000))]


def test_login_issues_tokens_that_authenticate_with_the_current_role(auth: AuthService) -> None:
    auth.add_user("Alice", PW, "trader", actor="test")
    pair = auth.login("alice", PW, ip="10.0.0.1", user_agent="pytest")
    who = auth.authenticate(pair.access_token)
    assert (who.username, who.role, who.session_id) == ("alice", Role.trader, pair.session_id)
    assert pair.refresh_token not in repr(pair) and pair.access_token not in repr(pair)
    assert ("login", "ok") in events(auth, "alice")


def test_wrong_password_unknown_user_and_disabled_user_look_the_same(auth: AuthService) -> None:
    auth.add_user("alice", PW, "viewer", actor="test")
    auth.add_user("bob", PW, "viewer", actor="test")
    auth.set_disabled("bob", actor="test")
    messages = set()
    for name, pw in (("alice", "wrong password!"), ("nobody", PW), ("bob", PW)):
        with pytest.raises(InvalidCredentials) as info:
            auth.login(name, pw)
        messages.add(str(info.value))
    assert messages == {"invalid credentials"}


def test_access_token_expires(auth: AuthService, clock: SimClock) -> None:
    auth.add_user("alice", PW, "viewer", actor="test")
    pair = auth.login("alice", PW)
    step(clock, auth.settings.access_ttl + 10)
    with pytest.raises(InvalidCredentials, match="expired"):
        auth.authenticate(pair.access_token)


def test_refresh_rotates_and_reuse_revokes_the_whole_family(auth: AuthService) -> None:
    auth.add_user("alice", PW, "viewer", actor="test")
    first = auth.login("alice", PW)
    second = auth.refresh(first.refresh_token)
    assert second.session_id == first.session_id and second.refresh_token != first.refresh_token
    third = auth.refresh(second.refresh_token)
    with pytest.raises(InvalidCredentials, match="reuse"):
        auth.refresh(first.refresh_token)  # stolen copy of an old token
    for token in (third.access_token, first.access_token):
        with pytest.raises(InvalidCredentials):
            auth.authenticate(token)
    with pytest.raises(InvalidCredentials):
        auth.refresh(third.refresh_token)  # the legitimate holder is logged out too
    assert ("refresh_reuse", "denied") in events(auth, "alice")


def test_refresh_token_expires_and_unknown_tokens_fail(auth: AuthService, clock: SimClock) -> None:
    auth.add_user("alice", PW, "viewer", actor="test")
    pair = auth.login("alice", PW)
    with pytest.raises(InvalidCredentials):
        auth.refresh("tlr_not-a-real-token")
    step(clock, auth.settings.refresh_ttl + 1)
    with pytest.raises(InvalidCredentials):
        auth.refresh(pair.refresh_token)


def test_sliding_refresh_is_capped_by_the_session_max_age(auth: AuthService, clock: SimClock) -> None:
    auth.add_user("alice", PW, "viewer", actor="test")
    pair = auth.login("alice", PW)
    for _ in range(4):  # active every 6 days: the sliding expiry alone would never end it
        step(clock, 6 * 86400)
        pair = auth.refresh(pair.refresh_token)
    assert pair.refresh_expires_at == clock.now() + timedelta(days=6)  # capped at 30 days
    step(clock, 6 * 86400)
    with pytest.raises(InvalidCredentials):
        auth.refresh(pair.refresh_token)


def test_logout_and_revoke_end_sessions_at_once(auth: AuthService) -> None:
    auth.add_user("alice", PW, "viewer", actor="test")
    auth.add_user("root", PW, "admin", actor="test")
    a, b = auth.login("alice", PW), auth.login("alice", PW)
    alice = auth.authenticate(a.access_token)
    assert {s.id for s in auth.sessions(alice)} == {a.session_id, b.session_id}
    auth.logout(alice)
    with pytest.raises(InvalidCredentials):
        auth.authenticate(a.access_token)
    with pytest.raises(InvalidCredentials):
        auth.refresh(a.refresh_token)
    root = auth.authenticate(auth.login("root", PW).access_token)
    with pytest.raises(Forbidden):
        auth.sessions(alice, all_users=True)
    auth.revoke_session(root, b.session_id)
    with pytest.raises(InvalidCredentials):
        auth.authenticate(b.access_token)
    with pytest.raises(Conflict):
        auth.revoke_session(root, b.session_id)


def test_disabling_a_user_and_changing_nothing_else_locks_them_out(auth: AuthService) -> None:
    auth.add_user("alice", PW, "trader", actor="test")
    pair = auth.login("alice", PW)
    key, _ = auth.create_api_key("alice", "bot", "viewer", actor="test")
    auth.set_disabled("alice", actor="test")
    for credential in (pair.access_token, key):
        with pytest.raises(InvalidCredentials):
            auth.authenticate(credential)
    auth.set_disabled("alice", False, actor="test")
    assert auth.authenticate(key).role is Role.viewer


@pytest.mark.parametrize("name", ["alice", "no-such-user"])
def test_five_failures_lock_the_name_for_the_configured_time(auth: AuthService, clock: SimClock,
                                                              name: str) -> None:
    auth.add_user("alice", PW, "viewer", actor="test")
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            auth.login(name, "wrong password!")
        step(clock, 10)
    with pytest.raises(LockedOut) as locked:
        auth.login(name, "wrong password!")
    assert locked.value.retry_after == 900
    step(clock, 600)
    with pytest.raises(LockedOut) as still:
        auth.login(name, PW)  # even the right password waits
    assert still.value.retry_after == 300
    step(clock, 301)
    if name == "alice":
        assert auth.login(name, PW).access_token
    # An unknown name is counted (and locked) under its marker, never as typed.
    actor = name if name == "alice" else auth.unknown_actor(name)
    got = [e for e, _ in events(auth, actor)]
    assert got.count("lockout") == 1 and "login_locked" in got


def test_failures_outside_the_window_or_before_a_success_do_not_count(auth: AuthService,
                                                                      clock: SimClock) -> None:
    auth.add_user("alice", PW, "viewer", actor="test")
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            auth.login("alice", "wrong password!")
    auth.login("alice", PW)
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            auth.login("alice", "wrong password!")
    step(clock, auth.settings.lockout_window + 1)
    with pytest.raises(InvalidCredentials):
        auth.login("alice", "wrong password!")  # 1 in the window: no lock


def test_rehash_on_login_when_parameters_change(store: Store, clock: SimClock) -> None:
    old = AuthService(store, AuthSettings(**FAST), secret=SECRET, clock=clock)
    old.add_user("alice", PW, "viewer", actor="test")
    before = old.repo.get_user("alice").password_hash  # type: ignore[union-attr]
    new = AuthService(store, AuthSettings(**{**FAST, "argon2_memory_cost": 2048}), secret=SECRET,
                      clock=clock)
    new.login("alice", PW)
    after = new.repo.get_user("alice").password_hash  # type: ignore[union-attr]
    assert after != before and "m=2048" in after
    new.login("alice", PW)


def test_api_key_lifecycle(auth: AuthService, clock: SimClock) -> None:
    auth.add_user("alice", PW, "trader", actor="test")
    key, rec = auth.create_api_key("alice", "bot", "trader", actor="test", ttl_days=2)
    with auth.repo.store.engine.connect() as conn:
        stored = conn.execute(text("SELECT key_hash FROM api_keys")).scalar_one()
    assert key not in stored and rec.last_used_at is None
    who = auth.authenticate(key)
    assert (who.username, who.role, who.api_key) == ("alice", Role.trader, rec.prefix)
    assert auth.repo.get_api_key(rec.prefix).last_used_at == clock.now()  # type: ignore[union-attr]
    with pytest.raises(InvalidCredentials):
        auth.authenticate(key[:-2] + "xx")  # right prefix, wrong secret
    step(clock, 2 * 86400 + 1)
    with pytest.raises(InvalidCredentials):
        auth.authenticate(key)
    key2, rec2 = auth.create_api_key("alice", "bot2", "viewer", actor="test")
    auth.revoke_api_key(rec2.prefix, actor="test")
    with pytest.raises(InvalidCredentials):
        auth.authenticate(key2)
    assert [e for e, o in events(auth) if o == "denied"].count("key_denied") == 3


def test_key_role_never_exceeds_creator_or_owner(auth: AuthService) -> None:
    auth.add_user("alice", PW, "viewer", actor="test")
    auth.add_user("root", PW, "admin", actor="test")
    root = auth.authenticate(auth.login("root", PW).access_token)
    with pytest.raises(Forbidden, match="above viewer"):
        auth.create_api_key("alice", "x", "trader", actor=root)
    alice = auth.authenticate(auth.login("alice", PW).access_token)
    with pytest.raises(Forbidden):
        auth.create_api_key("alice", "x", "viewer", actor=alice)
    assert ("role_denied", "denied") in events(auth, "alice")


def test_user_validation(auth: AuthService) -> None:
    auth.add_user("alice", PW, "viewer", actor="test")
    with pytest.raises(Conflict):
        auth.add_user("ALICE", PW, "viewer", actor="test")
    with pytest.raises(WeakPassword):
        auth.add_user("bob", "short", "viewer", actor="test")
    with pytest.raises(Invalid):
        auth.add_user("bob", PW, "superuser", actor="test")
    with pytest.raises(Invalid):
        auth.add_user("-bad name", PW, "viewer", actor="test")
    with auth.repo.store.engine.connect() as conn:
        hashes = conn.execute(text("SELECT password_hash FROM users")).scalars().all()
    assert len(hashes) == 1 and PW not in hashes[0]


def test_no_secret_no_service(store: Store) -> None:
    from tradelab.auth import AuthError

    with pytest.raises(AuthError, match="JWT_SECRET"):
        AuthService(store, AuthSettings(**FAST))


def test_racing_refreshes_of_one_token_win_once_and_revoke_the_family(auth: AuthService) -> None:
    import threading

    auth.add_user("alice", PW, "viewer", actor="test")
    pair = auth.login("alice", PW)
    barrier = threading.Barrier(4)
    results: list[str] = []

    def attempt() -> None:
        barrier.wait()
        try:
            auth.refresh(pair.refresh_token)
            results.append("ok")
        except InvalidCredentials:
            results.append("denied")

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["denied", "denied", "denied", "ok"]
    session = auth.repo.get_session(pair.session_id)
    assert session is not None and session.revoked_reason == "refresh token reuse"
