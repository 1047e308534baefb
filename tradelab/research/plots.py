"""Interactive plots of a backtest with hvplot/holoviews (Bokeh in Jupyter and reports)."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pandas as pd

from tradelab.execution import Execution

WIDTH, HEIGHT = 900, 260


class Plottable(Protocol):
    """What the plots read of a :class:`~tradelab.research.result.BacktestResult`.

    A structural type rather than the class itself: ``BacktestResult.plot`` imports
    this module, so importing the result module back (even for type checkers only)
    would make the two depend on each other.
    """

    @property
    def title(self) -> str: ...
    @property
    def execution(self) -> Execution: ...
    @property
    def bars(self) -> pd.DataFrame: ...
    @property
    def equity(self) -> pd.Series: ...
    @property
    def drawdown(self) -> pd.Series: ...
    @property
    def orders(self) -> pd.DataFrame: ...


def _hv() -> Any:
    import holoviews as hv

    if not hasattr(pd.DataFrame, "hvplot"):
        # Registers the .hvplot accessor. Only once: in IPython hvplot drops its module
        # before every cell, and each re-import re-sends the notebook extension, which
        # with inline resources (offline exports) is megabytes of Bokeh JS per plot cell.
        import hvplot.pandas  # noqa: F401

    return hv


def _numeral(values: Any) -> Any:
    """A Bokeh tick formatter with thousands separators and the decimals ``values`` need.

    Bokeh's default switches to scientific notation from 1e5 (an equity axis reading
    ``2.000e+5``).
    """
    from bokeh.models import NumeralTickFormatter

    arr = np.abs(np.asarray(values, dtype=float))
    arr = arr[np.isfinite(arr) & (arr > 0)]
    top = float(np.median(arr)) if len(arr) else 1.0
    # Up to cents from 1 up (a tick at 148.5 on a narrow price range must not read
    # 149), below that enough decimals for three significant digits; "[...]": trailing
    # zeros dropped, so round ticks read 200,000.
    places = 2 if top >= 1 else min(8, int(-np.floor(np.log10(top))) + 2)
    return NumeralTickFormatter(format="0,0.[" + "0" * places + "]")


def _dates() -> Any:
    """Date ticks without a time of day unless zoomed in to hours."""
    from bokeh.models import DatetimeTickFormatter

    return DatetimeTickFormatter(days="%Y-%m-%d", months="%Y-%m", years="%Y",
                                 hours="%Y-%m-%d %H:%M", minutes="%H:%M")


def _naive(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    # Bokeh draws tz-aware datetimes fine but hover tools show them as integers.
    return index.tz_convert(None) if index.tz is not None else index


def plot_equity(result: Plottable, **opts: Any) -> Any:
    """Equity (cash + position at close) over time, buy-and-hold of the same cash over
    the same bars (the benchmark, dotted), and the initial cash as a dashed line."""
    hv = _hv()
    equity = result.equity.copy()
    equity.index = _naive(equity.index)
    curve = equity.hvplot.line(title=f"{result.title}: equity", ylabel="equity", label="strategy",
                               xlabel="", width=WIDTH, height=HEIGHT, color="#1f77b4",
                               yformatter=_numeral(equity.to_numpy()), xformatter=_dates())
    close = result.bars["close"]
    hold = pd.Series(result.execution.cash * close.to_numpy() / float(close.iloc[0]),
                     index=equity.index, name="buy and hold")
    bench = hold.hvplot.line(label="buy and hold", color="#7f7f7f", line_dash="dotted")
    start = hv.HLine(result.execution.cash).opts(color="gray", line_dash="dashed")
    plot = curve * bench * start
    return plot.opts(**opts) if opts else plot


def plot_drawdown(result: Plottable, **opts: Any) -> Any:
    """Drawdown from the running peak, as a negative fraction."""
    _hv()
    dd = result.drawdown
    dd.index = _naive(dd.index)
    from bokeh.models import NumeralTickFormatter

    plot = dd.hvplot.area(title="drawdown", ylabel="drawdown", xlabel="", width=WIDTH,
                          height=HEIGHT // 2 + 40, color="#d62728", alpha=0.5,
                          yformatter=NumeralTickFormatter(format="0%"), xformatter=_dates())
    return plot.opts(**opts) if opts else plot


def plot_trades(result: Plottable, **opts: Any) -> Any:
    """The close with every fill marked: buys ▲ green, sells ▼ red, at the fill price."""
    hv = _hv()
    close = result.bars["close"].copy()
    close.index = _naive(close.index)
    price = close.hvplot.line(title="trades", ylabel="price", xlabel="", width=WIDTH,
                              height=HEIGHT, color="#555555", line_width=1,
                              yformatter=_numeral(close.to_numpy()), xformatter=_dates())
    orders = result.orders.copy()
    orders["time"] = _naive(pd.DatetimeIndex(orders["time"]))
    marks = []
    for side, color, marker in (("buy", "#2ca02c", "triangle"),
                                ("sell", "#d62728", "inverted_triangle")):
        part = orders[orders["side"] == side]
        marks.append(hv.Scatter(part, kdims=["time"], vdims=["price", "quantity", "fees"],
                                label=side).opts(color=color, marker=marker, size=9,
                                                 tools=["hover"]))
    plot = price * marks[0] * marks[1]
    return plot.opts(**opts) if opts else plot


def plot_result(result: Plottable) -> Any:
    """Equity, drawdown and trades stacked, sharing the time axis (a holoviews Layout)."""
    layout = plot_equity(result) + plot_drawdown(result) + plot_trades(result)
    return layout.cols(1)
