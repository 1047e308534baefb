"""`tradelab live`: three locks before a real order, each refusal saying how to proceed."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tradelab.cli import app

BASE = ["live", "sma_cross", "--source", "sample", "--symbol", "SPX", "--start", "2017-01-01",
        "--no-progress"]


def _run(args: list[str], tmp_path: Path, **env: str | None):
    clean = {"TRADELAB__LIVE__ENABLED": None, "TRADELAB_CCXT_API_KEY": None,
             "TRADELAB_CCXT_SECRET": None, "TRADELAB__STORE__URL": f"sqlite:///{tmp_path / 'l.db'}"}
    return CliRunner().invoke(app, args, env={**clean, **env})


def test_live_is_off_unless_enabled_in_config(tmp_path: Path) -> None:
    res = _run([*BASE, "--broker", "ccxt", "--confirm"], tmp_path)
    assert res.exit_code == 2 and "[live] enabled = true" in res.output


def test_live_wants_confirm_and_says_where_orders_would_go(tmp_path: Path) -> None:
    res = _run([*BASE, "--broker", "ccxt"], tmp_path, TRADELAB__LIVE__ENABLED="true")
    assert res.exit_code == 2 and "--confirm" in res.output and "sandbox" in res.output
    real = _run([*BASE, "--broker", "ccxt"], tmp_path, TRADELAB__LIVE__ENABLED="true",
                TRADELAB__LIVE__SANDBOX="false")
    assert real.exit_code == 2 and "REAL money" in real.output


def test_live_names_the_missing_keys(tmp_path: Path) -> None:
    res = _run([*BASE, "--broker", "ccxt", "--confirm"], tmp_path, TRADELAB__LIVE__ENABLED="true")
    assert res.exit_code == 2
    assert "TRADELAB_CCXT_API_KEY" in res.output and "TRADELAB_CCXT_SECRET" in res.output


def test_live_takes_only_live_brokers(tmp_path: Path) -> None:
    res = _run([*BASE, "--broker", "paper", "--confirm"], tmp_path, TRADELAB__LIVE__ENABLED="true")
    assert res.exit_code == 2 and "ccxt, alpaca" in res.output
