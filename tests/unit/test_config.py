from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tradelab.auth.settings import AuthSettings
from tradelab.cli import app
from tradelab.config import load_config
from tradelab.errors import ConfigError


def test_defaults_need_no_file(tmp_path: Path) -> None:
    s = load_config(paths=[], environ={}, home=tmp_path)
    assert s.data.default_source == "sample"
    assert s.research.fill == "next_open"
    assert s.path(s.cache.dir) == tmp_path / "var" / "cache"


def test_project_file_is_found_from_home(project_root: Path) -> None:
    s = load_config(environ={"TRADELAB_HOME": str(project_root)})
    assert s.home == project_root
    assert s.strategies.paths == (Path("strategies"),)


def test_environment_beats_files(tmp_path: Path) -> None:
    a = tmp_path / "a.toml"
    a.write_text('[research]\nfees = 0.01\ncash = 5000\n[data]\npolicy = "drop"\n')
    b = tmp_path / "b.toml"
    b.write_text("[research]\nfees = 0.02\n")
    s = load_config(paths=[a, b], environ={"TRADELAB__RESEARCH__CASH": "7000"}, home=tmp_path)
    assert s.research.fees == 0.02          # later file wins
    assert s.research.cash == 7000.0        # environment wins over both
    assert s.data.policy == "drop"


def test_settings_are_frozen(tmp_path: Path) -> None:
    s = load_config(paths=[], environ={}, home=tmp_path)
    with pytest.raises(Exception, match="frozen"):
        s.research.cash = 1  # type: ignore[misc]


def test_each_bad_field_gets_one_line_with_path_value_and_origin(tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text('[research]\nfill = "tomorrow"\n[cache]\nmemory_ttl = -5\n')
    with pytest.raises(ConfigError) as err:
        load_config(paths=[f], environ={"TRADELAB__RESEARCH__FEES": "lots",
                                        "TRADELAB__DATA__NOPE": "1"}, home=tmp_path)
    problems = err.value.problems
    assert len(problems) == 4
    by_path = {p.split(" ")[0].rstrip(":"): p for p in problems}
    assert "'tomorrow'" in by_path["research.fill"] and str(f) in by_path["research.fill"]
    assert "'lots'" in by_path["research.fees"] and "TRADELAB__RESEARCH__FEES" in by_path["research.fees"]
    assert "-5" in by_path["cache.memory_ttl"]
    assert "unknown setting" in by_path["data.nope"]


def test_unparseable_toml_names_the_file(tmp_path: Path) -> None:
    f = tmp_path / "broken.toml"
    f.write_text("[research\n")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load_config(paths=[f], environ={}, home=tmp_path)


def test_secrets_are_redacted_everywhere(tmp_path: Path) -> None:
    env = {"TRADELAB__DATA__CCXT__SECRET": "hunter2-very-secret",
           "TRADELAB__DATA__CCXT__API_KEY": "key-12345"}
    s = load_config(paths=[], environ=env, home=tmp_path)
    assert s.data.ccxt.secret is not None
    assert s.data.ccxt.secret.get_secret_value() == "hunter2-very-secret"
    text = repr(s) + str(s.redacted())
    assert "hunter2" not in text and "key-12345" not in text
    # a secret of the wrong type is reported without echoing its value
    f = tmp_path / "secret.toml"
    f.write_text("[data.ccxt]\nsecret = 987654321\n")
    with pytest.raises(ConfigError) as err:
        load_config(paths=[f], environ={}, home=tmp_path)
    assert "data.ccxt.secret" in str(err.value)
    assert "987654321" not in str(err.value)


def test_cli_config_check_redacts_and_fails_on_bad_values(project_root: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADELAB_HOME", str(project_root))
    monkeypatch.setenv("TRADELAB__DATA__CCXT__SECRET", "hunter2-very-secret")
    runner = CliRunner()
    ok = runner.invoke(app, ["config", "check"])
    assert ok.exit_code == 0, ok.output
    assert "hunter2" not in ok.output and "**********" in ok.output
    monkeypatch.setenv("TRADELAB__RESEARCH__SIZE_TYPE", "everything")
    monkeypatch.setenv("TRADELAB__CACHE__DISK_TTL", "0")
    bad = runner.invoke(app, ["config", "check"])
    assert bad.exit_code == 2
    lines = [ln for ln in bad.output.splitlines() if ln.startswith("config error:")]
    assert len(lines) == 2
    assert any("research.size_type" in ln and "'everything'" in ln for ln in lines)
    assert any("cache.disk_ttl" in ln for ln in lines)


def test_database_password_is_masked_in_the_effective_config(tmp_path: Path) -> None:
    env = {"TRADELAB__STORE__URL": "postgresql+psycopg://trader:s3cr3t-pw@db.local:5432/tl"}
    s = load_config(paths=[], environ=env, home=tmp_path)
    shown = s.redacted()["store"]["url"]
    assert "s3cr3t-pw" not in shown and "trader" in shown and "db.local" in shown


def test_config_check_masks_secrets_only(tmp_path: Path) -> None:
    env = {"TRADELAB__DATA__CCXT__SECRET": "hunter2-very-secret"}
    shown = load_config(paths=[], environ=env, home=tmp_path).redacted()
    assert shown["data"]["ccxt"]["secret"] == "**********"
    assert shown["auth"]["api_key_ttl_days"] == AuthSettings().api_key_ttl_days
    assert shown["auth"]["password_min_length"] == AuthSettings().password_min_length


@pytest.mark.parametrize("value", ["SPX,IXIC", " SPX , IXIC ", '["SPX", "IXIC"]'])
def test_list_overrides_are_comma_separated_or_json(tmp_path: Path, value: str) -> None:
    env = {"TRADELAB__RISK__ALLOWED_SYMBOLS": value,
           "TRADELAB__API__CORS_ORIGINS": value.replace("SPX", "http://a").replace("IXIC", "http://b"),
           "TRADELAB__STRATEGIES__PATHS": value.replace("SPX", "strategies").replace("IXIC", "more")}
    s = load_config(paths=[], environ=env, home=tmp_path)
    assert s.risk.allowed_symbols == frozenset({"SPX", "IXIC"})
    assert s.api.cors_origins == ("http://a", "http://b")
    assert s.strategies.paths == (Path("strategies"), Path("more"))
    assert load_config(paths=[], environ={"TRADELAB__RISK__ALLOWED_SYMBOLS": "SPX"},
                       home=tmp_path).risk.allowed_symbols == frozenset({"SPX"})


def test_an_unparseable_complex_override_is_one_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(paths=[], environ={"TRADELAB__DATA__POLICIES": "file=drop"}, home=tmp_path)
    assert err.value.problems == [err.value.problems[0]]
    assert "TRADELAB__DATA__POLICIES='file=drop'" in err.value.problems[0]


def test_a_bad_secret_sounding_number_is_shown_but_a_bad_secret_is_not(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(paths=[], environ={"TRADELAB__AUTH__PASSWORD_MIN_LENGTH": "twelve"}, home=tmp_path)
    assert "auth.password_min_length = 'twelve'" in err.value.problems[0]
    f = tmp_path / "notify.toml"
    f.write_text("[notify.channels.ops]\nurl = 12345678\n")
    with pytest.raises(ConfigError) as err:
        load_config(paths=[f], environ={}, home=tmp_path)
    assert "notify.channels.ops.url" in str(err.value) and "12345678" not in str(err.value)
