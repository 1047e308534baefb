"""``[auth]``/``[api]`` settings from the environment and the JWT-secret start-up rule."""

from __future__ import annotations

import pytest

from tradelab.api.app import create_app, resolve_secret
from tradelab.auth.settings import AuthSettings, api_settings, auth_settings, without_sections
from tradelab.config import Settings
from tradelab.errors import ConfigError
from tradelab.store import Store


def test_sections_come_from_the_environment() -> None:
    env = {"TRADELAB__AUTH__JWT_SECRET": "s" * 40, "TRADELAB__AUTH__ACCESS_TTL": "60",
           "TRADELAB__API__PORT": "9001", "TRADELAB__API__CORS_ORIGINS": "https://a,https://b"}
    auth, api = auth_settings(None, env), api_settings(None, env)
    assert auth.jwt_secret is not None and auth.jwt_secret.get_secret_value() == "s" * 40
    assert (auth.access_ttl, auth.refresh_ttl, auth.lockout_threshold) == (60, 7 * 86400, 5)
    assert (api.port, api.cors_origins) == (9001, ("https://a", "https://b"))
    assert "s" * 40 not in repr(auth)


def test_bad_values_name_the_variable_and_hide_secrets() -> None:
    with pytest.raises(ConfigError) as info:
        auth_settings(None, {"TRADELAB__AUTH__LOCKOUT_THRESHOLD": "0",
                             "TRADELAB__AUTH__JWT_SECRET": ["not", "a", "string"]})  # type: ignore[dict-item]
    text = str(info.value)
    assert "TRADELAB__AUTH__LOCKOUT_THRESHOLD" in text and "'not'" not in text


def test_sections_unknown_to_config_are_set_aside_for_load_config() -> None:
    env = {"TRADELAB__AUTH__JWT_SECRET": "x", "TRADELAB__DATA__POLICY": "drop", "PATH": "/bin"}
    kept = without_sections(env)
    assert kept["TRADELAB__DATA__POLICY"] == "drop" and kept["PATH"] == "/bin"
    assert ("TRADELAB__AUTH__JWT_SECRET" in kept) == ("auth" in Settings.model_fields)


def test_the_api_needs_a_secret_unless_in_dev_mode() -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        resolve_secret(AuthSettings())
    with pytest.raises(ConfigError, match="32 bytes"):
        resolve_secret(AuthSettings(jwt_secret="short"))
    secret, ephemeral = resolve_secret(AuthSettings(), dev=True)
    assert ephemeral and len(secret) >= 32
    assert resolve_secret(AuthSettings(jwt_secret="k" * 32)) == ("k" * 32, False)
    store = Store("sqlite://")
    with pytest.raises(ConfigError):
        create_app(store=store, auth=AuthSettings())
    assert create_app(store=store, auth=AuthSettings(), dev=True).title == "tradelab API"
