"""Plots and standalone HTML reports."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from tradelab.research.backtest import backtest
from tradelab.research.report import write_report
from tradelab.research.sweep import sweep


def test_plots_and_report(bars: pd.DataFrame, registry, tmp_path: Path) -> None:
    import holoviews as hv

    from tradelab.research.plots import plot_drawdown, plot_equity, plot_trades

    result = backtest(registry.create("sma_cross", fast=5, slow=20), bars)
    layout = result.plot()
    assert isinstance(layout, hv.Layout) and len(layout) == 3
    for fn in (plot_equity, plot_drawdown, plot_trades):
        assert isinstance(fn(result), hv.core.Dimensioned)
    swept = sweep(registry.get("sma_cross"), bars, {"fast": [5, 10], "slow": [20, 30]},
                  progress=False)
    path = write_report([result, swept], tmp_path / "sub" / "report.html", title="t")
    text = path.read_text()
    assert path.is_file() and "sma_cross" in text and "final_equity" in text
    # Offline: no script or stylesheet is fetched from the network when the page loads.
    assert not re.findall(r'<script[^>]+src="https?://', text)
    assert not re.findall(r'<link[^>]+rel="stylesheet"[^>]+href="https?://', text)
    with pytest.raises(TypeError):
        write_report([object()], tmp_path / "x.html")


def _formatters(plot) -> list:
    import holoviews as hv

    fig = hv.render(plot, backend="bokeh")
    return [fig.yaxis[0].formatter, fig.xaxis[0].formatter]


def test_plot_axes_are_readable(bars: pd.DataFrame, registry) -> None:
    from bokeh.models import DatetimeTickFormatter, NumeralTickFormatter

    from tradelab.research.plots import plot_drawdown, plot_equity, plot_trades

    result = backtest(registry.create("sma_cross", fast=5, slow=20), bars, cash=200_000)
    for fn in (plot_equity, plot_drawdown, plot_trades):
        y, x = _formatters(fn(result))
        # Bokeh's default (BasicTickFormatter) reads 2.000e+5 on an equity axis.
        assert isinstance(y, NumeralTickFormatter) and "e" not in y.format, fn.__name__
        assert isinstance(x, DatetimeTickFormatter), fn.__name__
    assert _formatters(plot_equity(result))[0].format == "0,0.[00]"


def test_formatting_follows_the_data() -> None:
    from tradelab.research.report import decimals, format_trades, time_format

    assert decimals([1.0, 20.0, 300.0]) == 0
    assert decimals([0.5, 1.25]) == 2
    assert decimals([0.00012345]) == 8
    daily = pd.date_range("2024-01-01", periods=3, freq="D", tz="UTC")
    minutes = pd.date_range("2024-01-01 09:30", periods=3, freq="5min", tz="UTC")
    assert time_format(daily) == "%Y-%m-%d"
    assert time_format(minutes) == "%Y-%m-%d %H:%M"
    trades = pd.DataFrame({
        "entry_time": [minutes[0], minutes[1]], "exit_time": [minutes[1], pd.NaT],
        "side": "long", "quantity": [0.125, 1.5], "entry_price": [100.0, 101.5],
        "exit_price": [101.0, float("nan")], "fees": [0.1, 0.1], "pnl": [0.02, 1.0],
        "return": [0.01, -0.02], "status": ["closed", "open"]})
    text = format_trades(trades, minutes)
    assert list(text["entry_time"]) == ["2024-01-01 09:30", "2024-01-01 09:35"]
    assert list(text["exit_time"]) == ["2024-01-01 09:35", "open"]
    assert list(text["exit_price"]) == ["101.00", "open"]
    assert list(text["quantity"]) == ["0.125", "1.500"]
    assert list(text["return"]) == ["1.00%", "-2.00%"]


def _document(text: str) -> tuple[str, list[str]]:
    """A saved page's Bokeh document: the markup of its HTML panes (unescaped; the page
    holds it in the document's JSON, escaped twice) and the names of its models."""
    import html
    import json

    docs = re.findall(r'<script type="application/json" id="[^"]+">\s*(.*?)\s*</script>',
                      text, re.S)
    assert len(docs) == 1
    strings: list[str] = []
    names: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and isinstance(node.get("name"), str):
                names.append(node["name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            strings.append(html.unescape(html.unescape(node)))

    walk(json.loads(docs[0]))
    return "\n".join(x for x in strings if "<" in x), names


def test_report_trades_collapsed_open_trade_and_benchmark(bars: pd.DataFrame, registry,
                                                           tmp_path: Path) -> None:
    from tradelab.research.report import PREVIEW

    # On these bars the fast cross ends in a position: the last trade is open.
    result = backtest(registry.create("sma_cross", fast=2, slow=5), bars, cash=200_000)
    trades = result.trades
    assert len(trades) > PREVIEW and trades["status"].iloc[-1] == "open"
    markup, models = _document(write_report(result, tmp_path / "r.html").read_text())
    assert "<table" in markup
    # Open trades say so; no cell reads NaT or NaN.
    assert "NaT" not in markup and "NaN" not in markup
    cells = re.compile(r"<tr>\s*" + r"<td>([^<]*)</td>\s*" * 10 + "</tr>")
    rows = cells.findall(markup)
    last = rows[-1]
    assert last[1] == "open" and last[5] == "open" and last[9] == "open"
    # Daily bars: dates only; whole units as integers.
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", r[0]) for r in rows)
    assert all(re.fullmatch(r"[\d,]+", r[3]) for r in rows)
    # Collapsed: the first and last rows shown, all of them in a closed <details>.
    n = len(trades)
    assert f"First and last {PREVIEW // 2} of {n}" in markup
    assert f"<summary>All {n} trades</summary>" in markup and "<details open" not in markup
    assert len(rows) == PREVIEW + n
    # The buy-and-hold benchmark is in the stats table next to the strategy's figures.
    assert "<th>benchmark_return</th>" in markup and "<th>excess_return</th>" in markup
    # Every axis formatter set: none is Bokeh's default, which reads 2.000e+5.
    assert "NumeralTickFormatter" in models and "BasicTickFormatter" not in models
