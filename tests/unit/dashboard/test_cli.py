"""``tradelab dashboard`` refuses to start without a JWT secret (before binding any port)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

import tradelab.cli.dashboard_cmd  # noqa: F401  (registers the command)
from tests.unit.api.helpers import ROOT
from tradelab.cli import app


def test_dashboard_needs_a_jwt_secret(tmp_path: Path) -> None:
    env = {"TRADELAB__AUTH__JWT_SECRET": None, "TRADELAB_HOME": str(ROOT),
           "TRADELAB__CACHE__DIR": str(tmp_path / "cache")}
    result = CliRunner().invoke(app, ["dashboard", "--url", f"sqlite:///{tmp_path / 'd.db'}",
                                      "--no-jobs", "--port", "1"], env=env)
    assert result.exit_code == 2
    assert "jwt_secret is not set" in result.output


def test_dashboard_help_names_the_options() -> None:
    result = CliRunner().invoke(app, ["dashboard", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--url", "--poll-ms", "--dev"):
        assert option in result.output
