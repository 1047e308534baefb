"""``tradelab db upgrade`` / ``tradelab db current``."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tradelab.cli import db_cmd
from tradelab.cli._app import app
from tradelab.store import Store

runner = CliRunner()


def test_upgrade_then_current(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 't.db'}"
    before = runner.invoke(app, ["db", "current", "--url", url])
    assert before.exit_code == 1, before.output
    assert "(empty)" in before.stdout
    up = runner.invoke(app, ["db", "upgrade", "--url", url])
    assert up.exit_code == 0, up.output
    head = Store.head_revision()
    assert head in up.stdout
    now = runner.invoke(app, ["db", "current", "--url", url])
    assert now.exit_code == 0, now.output
    assert f"{head} (head)" in now.stdout


def test_default_url_is_the_sqlite_file_under_home(tmp_path: Path) -> None:
    result = runner.invoke(app, ["db", "upgrade"], env={"TRADELAB_HOME": str(tmp_path),
                                                       "TRADELAB_CONFIG": ""})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "var" / "tradelab.db").is_file()


def test_passwords_are_never_printed() -> None:
    # Nothing listens on port 1: the command fails, and must say so without the password.
    url = "postgresql+psycopg://bob:s3cr3t-pw@127.0.0.1:1/nodb"
    result = runner.invoke(app, ["db", "current", "--url", url])
    assert result.exit_code == 2
    assert "s3cr3t-pw" not in result.output
    assert "bob:***@127.0.0.1:1/nodb" in result.output


def test_resolve_default_ignores_missing_store_section() -> None:
    class Bare:
        home = Path("/srv/tl")

    assert db_cmd.default_url(Bare()) == "sqlite:////srv/tl/var/tradelab.db"
