"""argon2 hashing and rehash, JWT access tokens, token and key formats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from tradelab.auth.errors import InvalidCredentials, WeakPassword
from tradelab.auth.passwords import Passwords
from tradelab.auth.tokens import AccessTokens, api_key_prefix, digest, new_api_key, same_digest

NOW = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
KEY = "k" * 40


def test_hash_is_argon2id_salted_and_verifies() -> None:
    pw = Passwords(time_cost=1, memory_cost=1024, parallelism=1)
    a, b = pw.hash("correct horse battery"), pw.hash("correct horse battery")
    assert a.startswith("$argon2id$") and a != b
    assert pw.verify(a, "correct horse battery") == (True, None)
    assert pw.verify(a, "wrong horse battery") == (False, None)
    assert pw.verify(None, "anything at all") == (False, None)
    assert pw.verify("not-a-hash", "anything at all") == (False, None)


def test_changed_parameters_give_a_new_hash_on_verify() -> None:
    old = Passwords(time_cost=1, memory_cost=1024, parallelism=1)
    new = Passwords(time_cost=2, memory_cost=2048, parallelism=1)
    stored = old.hash("correct horse battery")
    ok, rehashed = new.verify(stored, "correct horse battery")
    assert ok and rehashed is not None and "m=2048,t=2" in rehashed
    assert new.verify(rehashed, "correct horse battery") == (True, None)


@pytest.mark.parametrize("bad", ["short", " " * 20, "x" * 1025])
def test_password_policy(bad: str) -> None:
    with pytest.raises(WeakPassword):
        Passwords(min_length=12).check_policy(bad)


def test_access_token_round_trip_and_expiry() -> None:
    tokens = AccessTokens(KEY, "tradelab", 900)
    token, exp = tokens.issue(7, "alice", "trader", "sid1", NOW)
    assert exp == NOW + timedelta(seconds=900)
    claims = tokens.verify(token, NOW + timedelta(seconds=899))
    assert (claims.user_id, claims.username, claims.role, claims.session_id) == (7, "alice", "trader", "sid1")
    with pytest.raises(InvalidCredentials, match="expired"):
        tokens.verify(token, NOW + timedelta(seconds=906))


def test_tampered_foreign_and_unsigned_tokens_are_refused() -> None:
    tokens = AccessTokens(KEY, "tradelab", 900)
    token, _ = tokens.issue(7, "alice", "viewer", "sid1", NOW)
    head, _body, sig = token.split(".")
    forged_body = jwt.encode({"sub": "7", "role": "admin"}, KEY, algorithm="HS256").split(".")[1]
    other = AccessTokens("o" * 40, "tradelab", 900).issue(7, "alice", "admin", "s", NOW)[0]
    unsigned = jwt.encode({"iss": "tradelab", "sub": "7", "sid": "s", "typ": "access",
                           "iat": 0, "exp": 2**40}, None, algorithm="none")
    wrong_issuer = AccessTokens(KEY, "elsewhere", 900).issue(7, "alice", "admin", "s", NOW)[0]
    for bad in (f"{head}.{forged_body}.{sig}", other, unsigned, wrong_issuer, "garbage", ""):
        with pytest.raises(InvalidCredentials):
            tokens.verify(bad, NOW)


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        AccessTokens("too-short", "tradelab", 900)


def test_api_keys_have_a_lookup_prefix_and_only_digests_compare() -> None:
    key, prefix = new_api_key()
    assert key.startswith(f"tlk_{prefix}_") and len(key) > 50
    assert api_key_prefix(key) == prefix
    for bad in ("tlk_short_x", "nope", f"tlk_{prefix}", f"tlk_{prefix}_"):
        assert api_key_prefix(bad) is None
    assert len(digest(key)) == 64 and same_digest(key, digest(key))
    assert not same_digest(key + "x", digest(key))
