"""A portfolio strategy's declared ``decision_window``: what the engine hands it by default,
verified by the weights check (library and ``tradelab check``)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import tradelab.cli.research_cmd  # (registers the commands)
import tradelab.cli.strategy_cmd  # noqa: F401
from tradelab.cli._app import app
from tradelab.data.universe import Panel, load_panel
from tradelab.engine.rebalancer import Rebalancer
from tradelab.execution import Execution
from tradelab.strategy.portfolio import (
    PortfolioStrategy,
    WeightsError,
    check_weights_lookahead,
    declared_window,
    discover_portfolio_strategies,
)
from tradelab.testing import SHORT_MEMORY_SOURCE

ROOT = Path(__file__).resolve().parents[3]
RANGE = ("--start", "2012-01-01", "--end", "2016-12-31")


@pytest.fixture(scope="module")
def shipped() -> dict[str, type[PortfolioStrategy]]:
    return discover_portfolio_strategies([ROOT / "strategies"])


@pytest.fixture(scope="module")
def sp20() -> Panel:
    return load_panel("sp20", start="2008-01-01", end="2014-12-31")


def test_momentum_rotation_declares_its_warmup_and_passes(
        shipped: dict[str, type[PortfolioStrategy]], sp20: Panel) -> None:
    rotation = shipped["momentum_rotation"](lookback=200, skip=10)
    assert rotation.decision_window == rotation.warmup == 201
    report = check_weights_lookahead(rotation, sp20, samples=10)
    assert report.window == 201 and report.ok, str(report)
    assert "decision_window = 201 bars: OK" in str(report)


def test_a_window_too_small_fails_and_says_what_to_declare(
        shipped: dict[str, type[PortfolioStrategy]], sp20: Panel) -> None:
    base = shipped["momentum_rotation"]

    class Short(base):  # type: ignore[valid-type, misc]
        """12-1 momentum (reads 253 bars) declaring only 100."""

        @property
        def decision_window(self) -> int:
            return 100

    report = check_weights_lookahead(Short(), sp20, samples=10)
    assert not report.ok and not report.offenses  # causal, but the window is too small
    first = report.window_offenses[0]
    assert first.window == 100 and first.full != first.windowed
    assert first.position == sp20.index.get_loc(first.bar)
    text = str(report)
    assert "FAILED" in text and "declared decision_window = 100" in text
    assert "declare a larger window, or None if they depend on the whole history" in text


def test_a_stateful_strategy_cannot_declare_its_warmup(
        shipped: dict[str, type[PortfolioStrategy]]) -> None:
    """The pairs trade's last row reads ``warmup`` bars of prices, but its position is
    carried across crossings from the whole history: declaring the warmup is caught."""
    base = shipped["pairs_kopep"]
    assert base().decision_window is None

    class Pairs(base):  # type: ignore[valid-type, misc]
        @property
        def decision_window(self) -> int:
            return int(self.warmup)

    kopep = load_panel("kopep", start="2005-01-01", end="2012-12-31")
    report = check_weights_lookahead(Pairs(), kopep, samples=20)
    assert report.window_offenses and not report.offenses


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "253"])
def test_a_bad_declaration_is_one_clear_error(
        shipped: dict[str, type[PortfolioStrategy]], bad: object) -> None:
    base = shipped["momentum_rotation"]

    class Bad(base):  # type: ignore[valid-type, misc]
        @property
        def decision_window(self) -> object:
            return bad

    with pytest.raises(WeightsError, match=rf"momentum_rotation\.decision_window = {bad!r}: "
                                           "must be None or a number of bars >= 1"):
        declared_window(Bad())
    with pytest.raises(WeightsError, match="decision_window"):
        Rebalancer(Bad(), ("KO",), Execution())


def test_the_engine_hands_the_declared_window_unless_told_otherwise(
        shipped: dict[str, type[PortfolioStrategy]]) -> None:
    rotation = shipped["momentum_rotation"](lookback=60)
    symbols = ("KO", "PEP")
    assert Rebalancer(rotation, symbols, Execution()).history == 61
    assert Rebalancer(rotation, symbols, Execution(), history="all").history is None
    assert Rebalancer(rotation, symbols, Execution(), history=500).history == 500
    assert Rebalancer(shipped["pairs_kopep"](), symbols, Execution()).history is None
    with pytest.raises(ValueError, match="history = 'most': must be 'all' or a number"):
        Rebalancer(rotation, symbols, Execution(), history="most")  # type: ignore[arg-type]


def test_tradelab_check_fails_a_too_small_window(tmp_path: Path,
                                                 environ: dict[str, str]) -> None:
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "short_memory.py").write_text(SHORT_MEMORY_SOURCE)
    runner = CliRunner()
    env = {**environ, "TRADELAB__STRATEGIES__PATHS": json.dumps([str(folder)])}
    res = runner.invoke(app, ["check", "short_memory", *RANGE, "--samples", "6"], env=env,
                        catch_exceptions=False)
    assert res.exit_code == 1
    assert "declared decision_window = 10; declare a larger window" in res.stdout
    (folder / "short_memory.py").write_text(
        (folder / "short_memory.py").read_text().replace("decision_window = 10",
                                                         "decision_window = 50"))
    ok = runner.invoke(app, ["check", "short_memory", *RANGE, "--samples", "6"], env=env,
                       catch_exceptions=False)
    assert ok.exit_code == 0 and ok.stdout.strip().endswith("decision_window = 50 bars: OK")


def test_weights_of_a_window_equal_the_full_historys_last_row(
        shipped: dict[str, type[PortfolioStrategy]], sp20: Panel) -> None:
    """What the engine relies on, directly: the tail panel's last row is the full row."""
    rotation = shipped["momentum_rotation"]()
    full = rotation.target_weights(sp20)
    n = declared_window(rotation)
    assert n == 253
    for end in (n, 700, len(sp20)):
        lo = end - n
        tail = Panel(sp20.close.iloc[lo:end], sp20.open.iloc[lo:end],
                     sp20.tradable.iloc[lo:end], sp20.listed.iloc[lo:end], sp20.close_only)
        pd.testing.assert_series_equal(rotation.target_weights(tail).iloc[-1],
                                       full.iloc[end - 1])
