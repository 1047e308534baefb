"""A user record printed in a notebook or a log line shows no secret."""

from __future__ import annotations

from datetime import UTC, datetime

from tradelab.store.auth_repo import UserRecord


def test_repr_hides_the_password_hash_and_the_totp_seed() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    user = UserRecord(id=1, username="ana", role="trader", disabled=False, totp_enabled=True,
                      created_at=now, updated_at=now, password_hash="$argon2id$v=19$secret-hash",
                      totp_secret="JBSWY3DPEHPK3PXP", totp_last_step=7)
    text = repr(user)
    assert "argon2id" not in text and "JBSWY3DPEHPK3PXP" not in text
    assert "password_hash" not in text and "totp_secret" not in text
    assert "username='ana'" in text and "totp_last_step=7" in text
    # the fields themselves are intact for the auth layer
    assert user.password_hash.startswith("$argon2id$") and user.totp_secret == "JBSWY3DPEHPK3PXP"
