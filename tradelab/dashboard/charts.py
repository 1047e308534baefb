"""The dashboard's per-run charts as Bokeh figures whose data sources the views update.

The equity curve, the daily P&L bars and the price chart (candles, the strategy's
indicators, entry and exit markers) are plain Bokeh figures: their ``update``
methods assign the ``ColumnDataSource`` data in the same callback, and so the
same document patch, as the tiles and tables. A HoloViews ``DynamicMap`` fed by a
``Pipe`` re-renders on a later tick instead, so after a switch of the run selector
the page showed the new run's tiles next to the previous run's curve or bars for a
while (and a screenshot or a reader at that moment saw them mixed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import panel as pn
from bokeh.models import ColumnDataSource, DatetimeTickFormatter, NumeralTickFormatter, Range1d
from bokeh.plotting import figure

GAIN, LOSS = "#16a34a", "#dc2626"
#: Colours of the indicator lines, in the order the strategy returns them.
LINE_COLORS = ("#2563eb", "#f59e0b", "#7c3aed", "#0891b2", "#db2777")
DAY = pd.Timedelta(days=1)
_TOOLS = "pan,wheel_zoom,box_zoom,reset"


_NO_TIMES = np.array([], dtype="datetime64[ns]")


def _naive_utc(values: Any) -> np.ndarray:
    """Aware or naive times as naive UTC ``datetime64`` (Bokeh's datetime axis reads UTC)."""
    if not len(values):
        return _NO_TIMES
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True)).tz_localize(None).to_numpy()


def _ms(at: np.ndarray) -> np.ndarray:
    """Naive UTC ``datetime64`` as milliseconds since the epoch (Bokeh's datetime unit)."""
    return at.astype("datetime64[ns]").astype("int64") / 1e6


def fit(rng: Any, *columns: Any, pad: float = 0.05) -> None:
    """Set ``rng`` (a ``Range1d``) to span ``columns`` with ``pad`` of the span either side
    (left as it was when they are empty: nothing is drawn).

    Why explicit ranges: with Bokeh's default ``DataRange1d`` the browser computes the
    bounds after each data update and sends them back to the server, several messages
    per refresh. The server handles one browser message per turn of the document lock,
    which each refresh holds, so while an engine trades those messages queued up faster
    than they were handled, and a click waited behind them: for minutes, i.e. it was
    never seen. Ranges set here travel with the data, and nothing comes back.
    """
    values = [np.asarray(c, dtype=float) for c in columns if len(c)]
    if not values:
        return
    both = np.concatenate(values)
    both = both[np.isfinite(both)]
    if not len(both):
        return
    lo, hi = float(both.min()), float(both.max())
    margin = (hi - lo) * pad if hi > lo else (abs(lo) * pad or 1.0)
    rng.update(start=lo - margin, end=hi + margin, reset_start=lo - margin,
               reset_end=hi + margin)


def _figure(title: str, height: int) -> Any:
    # (bokeh's stubs type figure() without the keywords it forwards to its axes and tools)
    options: dict[str, Any] = {"title": title, "height": height, "sizing_mode": "stretch_width",
                               "x_axis_type": "datetime", "tools": _TOOLS,
                               "toolbar_location": "above", "x_range": Range1d(start=0, end=1),
                               "y_range": Range1d(start=0, end=1)}
    fig = figure(**options)
    fig.xaxis.formatter = DatetimeTickFormatter(days="%b %d", months="%b %Y", hours="%H:%M")
    fig.yaxis.formatter = NumeralTickFormatter(format="0,0.[00]")
    fig.xgrid.grid_line_alpha = fig.ygrid.grid_line_alpha = 0.4
    return fig


class EquityChart:
    """The run's equity per snapshot as a line (one point per bar the engine recorded)."""

    TITLE = "Equity (selected run)"

    def __init__(self, height: int = 340) -> None:
        self.source = ColumnDataSource(self.columns(pd.DataFrame({"at": [], "equity": []})))
        fig = _figure(self.TITLE, height)
        fig.line(x="at", y="equity", color="#2563eb", line_width=2, source=self.source,
                 name="equity")
        fig.yaxis.axis_label = "equity"
        self.figure = fig
        self.pane = pn.pane.Bokeh(fig, sizing_mode="stretch_width", height=height)

    @staticmethod
    def columns(curve: pd.DataFrame) -> dict[str, Any]:
        """The data source's columns for an ``at, equity`` frame."""
        if not len(curve):
            return {"at": _NO_TIMES, "equity": np.array([], dtype=float)}
        return {"at": _naive_utc(curve["at"]), "equity": curve["equity"].astype(float).to_numpy()}

    def update(self, curve: pd.DataFrame) -> None:
        """Show ``curve`` (``at, equity``) instead of what was shown."""
        data = self.columns(curve)
        self.source.data = data
        fit(self.figure.x_range, _ms(data["at"]), pad=0.01)
        fit(self.figure.y_range, data["equity"])


class DailyChart:
    """P&L per UTC day as bars on a time axis (one ``quad`` per day, green gain, red loss)."""

    TITLE = "Daily P&L (UTC days)"

    def __init__(self, height: int = 240) -> None:
        self.source = ColumnDataSource(self.columns(pd.DataFrame({"day": [], "pnl": []})))
        fig = _figure(self.TITLE, height)
        fig.quad(left="left", right="right", bottom="bottom", top="top", color="color",
                 line_width=0, source=self.source)
        fig.yaxis.axis_label = "P&L"
        self.figure = fig
        self.pane = pn.pane.Bokeh(fig, sizing_mode="stretch_width", height=height)

    @staticmethod
    def columns(daily: pd.DataFrame) -> dict[str, Any]:
        """The data source's columns for a ``day, pnl`` frame."""
        day = _naive_utc(daily["day"]) if len(daily) else _NO_TIMES
        pnl = daily["pnl"].astype(float).to_numpy() if len(daily) else np.array([], dtype=float)
        return {"left": day, "right": day + np.timedelta64(20, "h"),
                "bottom": np.minimum(pnl, 0.0), "top": np.maximum(pnl, 0.0),
                "color": [GAIN if v >= 0 else LOSS for v in pnl]}

    def update(self, daily: pd.DataFrame) -> None:
        """Show ``daily`` (``day, pnl``) instead of what was shown."""
        data = self.columns(daily)
        self.source.data = data
        fit(self.figure.x_range, _ms(data["left"]), _ms(data["right"]), pad=0.01)
        fit(self.figure.y_range, data["bottom"], data["top"])


class PriceChart:
    """Candles of the run's bars, the strategy's indicator lines and its fills as markers
    (buy ▲ below nothing: at the fill's time and price; sell ▼)."""

    TITLE = "Price (selected run)"

    def __init__(self, height: int = 360, lines: int = len(LINE_COLORS)) -> None:
        empty: dict[str, Any] = {"at": _NO_TIMES, "open": [], "high": [], "low": [],
                                 "close": [], "top": [], "bottom": [], "color": []}
        self.candles = ColumnDataSource(empty)
        self.buys = ColumnDataSource({"at": _NO_TIMES, "price": []})
        self.sells = ColumnDataSource({"at": _NO_TIMES, "price": []})
        self.lines = [ColumnDataSource({"at": _NO_TIMES, "value": []})
                      for _ in range(lines)]
        fig = _figure(self.TITLE, height)
        fig.segment(x0="at", y0="low", x1="at", y1="high", color="#374151", source=self.candles,
                    name="wicks")
        self._body = fig.vbar(x="at", width=DAY / pd.Timedelta(milliseconds=1) * 0.7,
                              top="top", bottom="bottom", fill_color="color", line_color="color",
                              source=self.candles, name="candles")
        self._renderers = [fig.line(x="at", y="value", color=c, line_width=2, source=s,
                                    name=f"indicator-{i}", legend_label=f"indicator {i}")
                           for i, (c, s) in enumerate(zip(LINE_COLORS, self.lines, strict=False))]
        fig.scatter(x="at", y="price", marker="triangle", size=12, color=GAIN, source=self.buys,
                    name="buys", legend_label="buy")
        fig.scatter(x="at", y="price", marker="inverted_triangle", size=12, color=LOSS,
                    source=self.sells, name="sells", legend_label="sell")
        fig.legend.location = "top_left"
        fig.legend.label_text_font_size = "11px"
        self.figure = fig
        self.pane = pn.pane.Bokeh(fig, sizing_mode="stretch_width", height=height)

    def update(self, bars: pd.DataFrame, indicators: dict[str, list[float]],
               markers: pd.DataFrame, title: str = TITLE) -> None:
        """Show ``bars`` (``at, open, high, low, close``), ``indicators`` (name → values
        aligned with ``bars``; as many as there are line colours) and ``markers``
        (``at, side, price``)."""
        at = _naive_utc(bars["at"]) if len(bars) else _NO_TIMES
        o = bars["open"].astype(float).to_numpy() if len(bars) else np.array([])
        c = bars["close"].astype(float).to_numpy() if len(bars) else np.array([])
        step = pd.Timedelta((at[1:] - at[:-1]).min()) if len(at) > 1 else DAY
        self._body.glyph.width = step / pd.Timedelta(milliseconds=1) * 0.7
        self.candles.data = {
            "at": at, "open": o, "close": c,
            "high": bars["high"].astype(float).to_numpy() if len(bars) else np.array([]),
            "low": bars["low"].astype(float).to_numpy() if len(bars) else np.array([]),
            "top": np.maximum(o, c), "bottom": np.minimum(o, c),
            "color": [GAIN if x >= y else LOSS for x, y in zip(c, o, strict=True)]}
        names = list(indicators)[:len(self.lines)]
        for i, (source, renderer) in enumerate(zip(self.lines, self._renderers, strict=True)):
            values = indicators[names[i]] if i < len(names) else []
            source.data = {"at": at if len(values) else _NO_TIMES,
                           "value": np.asarray(values, dtype=float)}
            renderer.visible = i < len(names)
            item = self.figure.legend.items[i]
            item.label = {"value": names[i] if i < len(names) else ""}
            item.visible = i < len(names)
        for side, source in (("buy", self.buys), ("sell", self.sells)):
            rows = markers[markers["side"] == side] if len(markers) else markers
            source.data = {"at": _naive_utc(rows["at"]) if len(rows) else _NO_TIMES,
                           "price": rows["price"].astype(float).to_numpy() if len(rows)
                           else np.array([])}
        half = step / pd.Timedelta(milliseconds=1) / 2
        times = _ms(at)
        fit(self.figure.x_range, times - half, times + half, pad=0.01)
        fit(self.figure.y_range, self.candles.data["low"], self.candles.data["high"],
            *(source.data["value"] for source in self.lines), self.buys.data["price"],
            self.sells.data["price"])
        self.figure.title.text = title


__all__ = ["DailyChart", "EquityChart", "PriceChart", "fit"]
