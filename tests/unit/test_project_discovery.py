"""Outside a project the CLI says how to point it at one (and creates nothing there)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tradelab.cli import app


@pytest.mark.parametrize("command", [["strategies"], ["backtest", "sma_cross"]])
def test_outside_a_project_commands_fail_saying_how(command, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, command, env={"TRADELAB_HOME": None, "TRADELAB_CONFIG": None})
    assert res.exit_code == 2
    assert "no tradelab project" in res.output and "TRADELAB_HOME" in res.output
    assert list(tmp_path.iterdir()) == []  # no var/cache left behind


def test_a_project_is_found_from_a_subfolder(project_root: Path, monkeypatch) -> None:
    monkeypatch.chdir(project_root / "notebooks")
    res = CliRunner().invoke(app, ["strategies"], env={"TRADELAB_HOME": None, "TRADELAB_CONFIG": None})
    assert res.exit_code == 0 and "sma_cross" in res.output


def test_tradelab_home_points_at_the_project_from_anywhere(project_root: Path, tmp_path: Path,
                                                           monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["strategies"], env={"TRADELAB_HOME": str(project_root),
                                                       "TRADELAB_CONFIG": None})
    assert res.exit_code == 0 and "sma_cross" in res.output
