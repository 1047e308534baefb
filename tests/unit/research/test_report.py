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
