"""``[auth]``/``[api]`` settings come from the collected configuration only; the JWT-secret rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradelab.api.app import create_app, resolve_secret
from tradelab.auth.settings import ApiSettings, AuthSettings, api_settings, auth_settings
from tradelab.config import load_config
from tradelab.errors import ConfigError
from tradelab.monitor.metrics import Metrics
from tradelab.store import Store
from tradelab.strategy.registry import StrategyRegistry


def test_sections_come_from_the_collected_configuration(tmp_path: Path) -> None:
    env = {"TRADELAB__AUTH__JWT_SECRET": "s" * 40, "TRADELAB__AUTH__ACCESS_TTL": "60",
           "TRADELAB__API__PORT": "9001", "TRADELAB__API__MAX_BODY_BYTES": "65536",
           "TRADELAB__API__CORS_ORIGINS": '["https://a", "https://b"]'}
    cfg = load_config(paths=[], environ=env, home=tmp_path)
    auth, api = auth_settings(cfg), api_settings(cfg)
    assert auth is cfg.auth and api is cfg.api
    assert auth.jwt_secret is not None and auth.jwt_secret.get_secret_value() == "s" * 40
    assert (auth.access_ttl, auth.refresh_ttl, auth.lockout_threshold) == (60, 7 * 86400, 5)
    assert (api.port, api.max_body_bytes, api.cors_origins) == (9001, 65536, ("https://a", "https://b"))
    assert "s" * 40 not in repr(auth)


def test_the_environment_is_never_read_behind_the_callers_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADELAB__AUTH__ACCESS_TTL", "60")
    monkeypatch.setenv("TRADELAB__API__PORT", "9001")
    monkeypatch.setenv("TRADELAB__API__MAX_BODY_BYTES", "2048")
    assert auth_settings(None) == AuthSettings()
    assert api_settings(None) == ApiSettings()
    assert api_settings(None).max_body_bytes == 1024 * 1024
    app = create_app(store=Store("sqlite://"), registry=StrategyRegistry(), metrics=Metrics(), dev=True)
    assert app.state.services.settings == ApiSettings()
    assert app.state.services.auth.settings.access_ttl == AuthSettings().access_ttl


def test_bad_values_name_the_variable_and_hide_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(paths=[], home=tmp_path,
                    environ={"TRADELAB__AUTH__LOCKOUT_THRESHOLD": "0",
                             "TRADELAB__AUTH__JWT_SECRET": '["not", "a", "string"]'})
    text = str(info.value)
    assert "TRADELAB__AUTH__LOCKOUT_THRESHOLD" in text and "'not'" not in text


def test_a_default_key_lifetime_above_the_maximum_is_refused() -> None:
    with pytest.raises(ValueError, match="api_key_ttl_days=400"):
        AuthSettings(api_key_ttl_days=400, api_key_max_ttl_days=365)
    with pytest.raises(ValueError):
        ApiSettings(max_body_bytes=10)


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
        create_app(store=store, registry=StrategyRegistry(), metrics=Metrics(), auth=AuthSettings())
    assert create_app(store=store, registry=StrategyRegistry(), metrics=Metrics(), auth=AuthSettings(),
                      dev=True).title == "tradelab API"
