"""``tradelab users`` and ``tradelab apikeys`` against a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tradelab.cli import api_cmd, auth_cmd  # noqa: F401  (register the commands)
from tradelab.cli._app import app
from tradelab.store import Store
from tradelab.store.auth_repo import AuthRepo

runner = CliRunner()
PW = "a-long-cli-passphrase"


def cli(url: str, *args: str, stdin: str | None = None) -> object:
    return runner.invoke(app, [*args, "--url", url], input=stdin)


def test_users_add_list_disable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    added = cli(url, "users", "add", "Carol", "--role", "trader", "--password-stdin", stdin=PW + "\n")
    assert added.exit_code == 0, added.output
    assert PW not in added.output
    prompted = cli(url, "users", "add", "dave", stdin=f"{PW}\n{PW}\n")
    assert prompted.exit_code == 0, prompted.output
    listed = cli(url, "users", "list", "--json")
    rows = json.loads(listed.stdout)
    assert [(r["username"], r["role"], r["disabled"]) for r in rows] == [
        ("carol", "trader", False), ("dave", "viewer", False)]
    assert cli(url, "users", "disable", "carol").exit_code == 0
    assert json.loads(cli(url, "users", "list", "--json").stdout)[0]["disabled"] is True
    weak = cli(url, "users", "add", "erin", "--password-stdin", stdin="short\n")
    assert weak.exit_code == 2 and "too short" in weak.output
    dup = cli(url, "users", "add", "dave", "--password-stdin", stdin=PW + "\n")
    assert dup.exit_code == 2 and "already exists" in dup.output
    store = Store(url)
    audit = [(a.event, a.actor) for a in AuthRepo(store).audit()]
    store.close()
    assert audit[0][0] == "user_disabled" and audit[0][1].startswith("cli")


def test_password_is_never_an_argument(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    r = cli(url, "users", "add", "eve", "--password", PW)
    assert r.exit_code != 0


def test_apikeys_create_list_revoke(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    cli(url, "users", "add", "carol", "--role", "trader", "--password-stdin", stdin=PW + "\n")
    created = cli(url, "apikeys", "create", "--user", "carol", "--name", "ci", "--role", "trader",
                  "--days", "30")
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("tlk_")
    rows = json.loads(cli(url, "apikeys", "list", "--json").stdout)
    assert len(rows) == 1 and key not in json.dumps(rows)
    prefix = rows[0]["prefix"]
    assert key.startswith(f"tlk_{prefix}_") and rows[0]["role"] == "trader"
    too_high = cli(url, "apikeys", "create", "--user", "carol", "--name", "x", "--role", "admin")
    assert too_high.exit_code == 2 and "above trader" in too_high.output
    assert cli(url, "apikeys", "revoke", prefix).exit_code == 0
    assert json.loads(cli(url, "apikeys", "list", "--json").stdout)[0]["revoked_at"] is not None
    assert cli(url, "apikeys", "revoke", prefix).exit_code == 2


def test_api_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    r = runner.invoke(app, ["api", "--url", f"sqlite:///{tmp_path / 'x.db'}"],
                      env={"TRADELAB_HOME": str(tmp_path), "TRADELAB_CONFIG": "",
                           "TRADELAB__AUTH__JWT_SECRET": ""})
    assert r.exit_code == 2 and "JWT_SECRET" in r.output
    short = runner.invoke(app, ["api", "--url", f"sqlite:///{tmp_path / 'x.db'}"],
                          env={"TRADELAB_HOME": str(tmp_path), "TRADELAB_CONFIG": "",
                               "TRADELAB__AUTH__JWT_SECRET": "too-short"})
    assert short.exit_code == 2 and "32 bytes" in short.output and "too-short" not in short.output
