"""PortfolioResult.plot renders (Bokeh) with the parameters in its title."""

from __future__ import annotations

from pathlib import Path

import holoviews as hv
from bokeh.models import Plot

from tradelab.data.universe import load_panel
from tradelab.research.portfolio import backtest_portfolio, portfolio_strategy

PATHS = [Path(__file__).resolve().parents[3] / "strategies"]


def test_plot_renders_with_the_params_in_the_title() -> None:
    panel = load_panel("kopep", start="2016-01-01", end="2018-12-31")
    strat = portfolio_strategy("pairs_kopep", {"window": 40, "z_window": 10}, paths=PATHS)
    result = backtest_portfolio(strat, panel=panel)
    assert result.stats["exposure_short"] > 0  # the short areas are drawn too
    # holoviews formats titles with str.format: the params dict's braces must survive it
    figure = hv.render(result.plot(), backend="bokeh")
    titles = [child.title.text for child in figure.select({"type": Plot})
              if child.title is not None]
    assert any("'window': 40" in t for t in titles), titles
