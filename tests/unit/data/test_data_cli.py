"""``tradelab cache stats|clear`` and ``tradelab data sources|show`` end to end (CliRunner)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tradelab.cli.data_cmd  # noqa: F401  (registers the commands until cli/__init__ does)
from tradelab.cli import app


@pytest.fixture()
def run(tmp_path: Path, fixtures: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "data").mkdir()
    shutil.copy(fixtures / "orcl-2014-yahoo.csv", tmp_path / "data" / "ORCL.csv")
    env = {"TRADELAB_HOME": str(tmp_path), "TRADELAB_CONFIG": "",
           "TRADELAB__CACHE__DIR": str(tmp_path / "cache")}
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args), env=env)

    return invoke


def test_show_prints_ends_count_and_report(run) -> None:  # type: ignore[no-untyped-def]
    result = run("data", "show", "ORCL", "--source", "file", "--rows", "2")
    assert result.exit_code == 0, result.output
    assert "2014-01-02" in result.output and "2014-03-04" in result.output
    assert "42 bars" in result.output
    assert "validation of file:ORCL (policy raise)" in result.output


def test_show_then_stats_then_clear_by_tag(run) -> None:  # type: ignore[no-untyped-def]
    run("data", "show", "ORCL", "--source", "file")
    run("data", "show", "SPX", "--source", "sample", "--start", "2018-01-01")
    stats = json.loads(run("cache", "stats", "--json").output)
    disk = stats["levels"][1]
    assert disk["name"] == "disk" and disk["size"] == 2 and disk["misses"] == 2
    result = run("cache", "clear", "--tag", "symbol=orcl")
    assert result.exit_code == 0
    assert result.output.startswith("removed 1 entries with tag symbol=ORCL")
    assert "removed 1 entries in total" in run("cache", "clear").output


def test_show_with_adjust_and_policy(run) -> None:  # type: ignore[no-untyped-def]
    raw = run("data", "show", "ORCL", "--source", "file", "--rows", "1")
    adj = run("data", "show", "ORCL", "--source", "file", "--rows", "1", "--adjust", "adjusted",
              "--policy", "fill")
    assert adj.exit_code == 0 and "policy fill" in adj.output
    assert raw.output.splitlines()[1] != adj.output.splitlines()[1]


def test_errors_are_one_line_and_non_zero(run) -> None:  # type: ignore[no-untyped-def]
    result = run("data", "show", "NOPE", "--source", "file")
    assert result.exit_code == 2
    assert result.output.startswith("error: file source: no data file for symbol 'NOPE'")
    assert len(result.output.strip().splitlines()) == 1
    bad = run("data", "show", "ORCL", "--source", "nowhere")
    assert bad.exit_code == 2 and "available: ccxt, file, sample, yfinance" in bad.output
    assert run("cache", "clear", "--tag", "sample").exit_code == 2
    assert run("data", "show", "ORCL", "--adjust", "split").exit_code == 2


def test_sources_lists_configured_sources(run) -> None:  # type: ignore[no-untyped-def]
    result = run("data", "sources", "--json")
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert set(rows) == {"sample", "file", "yfinance", "ccxt"}
    assert rows["sample"]["default"] and rows["sample"]["symbols"][:2] == ["SPX", "IXIC"]
    assert {"KO", "PEP"} <= set(rows["sample"]["symbols"]) and len(rows["sample"]["symbols"]) == 22
    assert rows["file"]["symbols"] == ["ORCL"] and rows["yfinance"]["adjust"] == "adjusted"
