"""Read-only live views over a :class:`~tradelab.dashboard.state.Snapshot`.

:class:`LiveViews` builds the widgets once and :meth:`LiveViews.update`
pushes a new snapshot into them (only data travels to the browser, the
layout stays). ``data-testid`` attributes mark the values tests look for.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import pandas as pd
import panel as pn

from tradelab.dashboard.charts import DailyChart, EquityChart, PriceChart
from tradelab.dashboard.feedview import feed_html
from tradelab.dashboard.htmltable import HtmlTable
from tradelab.dashboard.state import COLUMNS, Snapshot

CARD = {"border": "1px solid #e3e6ea", "border-radius": "8px", "background": "white",
        "padding": "4px 10px"}
_NUM = {"float": {"type": "money", "decimal": ".", "thousand": ",", "precision": 2}}


def _fmt_money(v: float | None, currency: str = "") -> str:
    return "–" if v is None else f"{v:,.2f}{(' ' + currency) if currency else ''}"


_WIDTHS = {"fill_id": 140, "client_order_id": 140, "message": 260, "event": 300}


def _table(name: str, height: int = 260, **kw: Any) -> pn.widgets.Tabulator:
    kw.setdefault("widths", {c: w for c, w in _WIDTHS.items() if c in COLUMNS[name]})
    return pn.widgets.Tabulator(
        pd.DataFrame(columns=COLUMNS[name]), show_index=False, disabled=True, theme="simple",
        layout="fit_data_stretch", sizing_mode="stretch_width", height=height,
        selectable=False, pagination=None, **kw)


def _for_display(df: pd.DataFrame) -> pd.DataFrame:
    """Times as short UTC text (readable, independent of the browser's zone)."""
    out = df.copy()
    for col in out.columns:
        if col in ("at", "created_at", "started_at", "finished_at", "last_bar", "entry_time",
                   "exit_time", "last_at") and len(out):
            out[col] = pd.to_datetime(out[col], utc=True, errors="coerce").dt.strftime(
                "%Y-%m-%d %H:%M:%S").fillna("")
    return out


def stat(label: str, value: str, testid: str, color: str = "#1f2937") -> str:
    """One KPI tile as HTML."""
    return (f"<div style='min-width:110px'><div style='font-size:12px;color:#6b7280;"
            f"text-transform:uppercase;letter-spacing:.04em'>{html.escape(label)}</div>"
            f"<div data-testid='{testid}' style='font-size:20px;font-weight:600;color:{color}'>"
            f"{html.escape(value)}</div></div>")


def kill_switch_html(ks: Any) -> str:
    """The kill-switch banner: green when trading, red when halted."""
    if ks is None:
        return ("<div data-testid='kill-switch' data-state='none' style='padding:8px 12px;"
                "border-radius:6px;background:#f3f4f6'>No account data yet</div>")
    if ks.engaged:
        who = f" by {html.escape(ks.by)}" if ks.by else ""
        when = f" at {ks.at:%Y-%m-%d %H:%M:%S} UTC" if ks.at else ""
        return ("<div data-testid='kill-switch' data-state='halted' style='padding:8px 12px;"
                "border-radius:6px;background:#fee2e2;color:#991b1b;font-weight:600'>"
                f"■ TRADING HALTED (kill switch engaged{who}{when})"
                f"<div style='font-weight:400'>{html.escape(ks.reason or '')}</div></div>")
    return ("<div data-testid='kill-switch' data-state='active' style='padding:8px 12px;"
            "border-radius:6px;background:#dcfce7;color:#166534;font-weight:600'>"
            "● Trading active (kill switch off)</div>")


#: The views built only when first shown (the sections after the first screen): each
#: is an attribute of :class:`LiveViews` created on first access and filled from the
#: latest snapshot at once.
LAZY_PARTS = ("orders", "trades", "daily", "price", "symbols", "feed", "quality", "risk_events",
              "runs", "job_runs", "reconciliations", "events")
#: The lazy parts that are tables of the snapshot's frame of the same name.
_PLAIN_TABLES = ("orders", "trades", "risk_events", "runs", "job_runs", "reconciliations", "events")


class LiveViews:
    """One run's equity, KPIs, positions, orders, fills, trades and daily P&L; account-wide
    risk events, runs, job runs and reconciliations.

    Only the first screen's views (tiles, status, kill switch, equity curve, positions
    and fills) are built with the object; the others (:data:`LAZY_PARTS`) when
    first used, e.g. by a section opened in the browser: a page then costs the server
    and the browser only what it shows. :meth:`update` refreshes the built parts that are
    not :meth:`paused` (a closed section), and a part built later starts from the
    latest snapshot, so every part shows the same data whenever it appears.
    """

    def __init__(self) -> None:
        # Bokeh figures updated in the same patch as the tiles (see .charts).
        self.equity = EquityChart(height=340)
        self.equity_plot = self.equity.pane
        self.kpis = pn.pane.HTML("", sizing_mode="stretch_width")
        self.kill_switch = pn.pane.HTML(kill_switch_html(None), sizing_mode="stretch_width")
        # Plain HTML tables on the first screen (see .htmltable: Tabulator's cost there).
        self.positions = HtmlTable(COLUMNS["positions"], height=180, testid="positions-table",
                                   money=("avg_price", "mark", "unrealized", "realized_pnl"))
        self.account = pn.pane.HTML("", sizing_mode="stretch_width")
        self.fills = HtmlTable(COLUMNS["fills"], height=240, testid="fills-table",
                               money=("price", "fees"))
        self.status = pn.pane.HTML("", sizing_mode="stretch_width")
        self.snapshot: Snapshot | None = None
        self.built: set[str] = set()
        self._paused: set[str] = set()

    # -- the lazy parts (LAZY_PARTS) ---------------------------------------------------------
    def _made(self, name: str, view: Any) -> Any:
        """Note ``name`` as built and fill it from the latest snapshot (if any yet)."""
        self.built.add(name)
        setattr(self, f"_{name}", view)
        if self.snapshot is not None:
            self._refresh(name, self.snapshot)
        return view

    def _part(self, name: str) -> Any:
        view = self.__dict__.get(f"_{name}")
        return view if view is not None else self._made(name, _BUILD[name]())

    @property
    def orders(self) -> pn.widgets.Tabulator:
        return self._part("orders")

    @property
    def trades(self) -> pn.widgets.Tabulator:
        return self._part("trades")

    @property
    def daily(self) -> DailyChart:
        return self._part("daily")

    @property
    def daily_plot(self) -> pn.pane.Bokeh:
        return self.daily.pane

    @property
    def price(self) -> PriceChart:
        return self._part("price")

    @property
    def price_plot(self) -> pn.pane.Bokeh:
        return self.price.pane

    @property
    def symbols(self) -> pn.widgets.Tabulator:
        return self._part("symbols")

    @property
    def feed(self) -> pn.pane.HTML:
        return self._part("feed")

    @property
    def quality(self) -> pn.widgets.Tabulator:
        return self._part("quality")

    @property
    def risk_events(self) -> pn.widgets.Tabulator:
        return self._part("risk_events")

    @property
    def runs(self) -> pn.widgets.Tabulator:
        return self._part("runs")

    @property
    def job_runs(self) -> pn.widgets.Tabulator:
        return self._part("job_runs")

    @property
    def reconciliations(self) -> pn.widgets.Tabulator:
        return self._part("reconciliations")

    @property
    def events(self) -> pn.widgets.Tabulator:
        return self._part("events")

    def pause(self, *names: str) -> None:
        """Stop refreshing these parts (their section was closed: nobody sees them)."""
        self._paused.update(names)

    def resume(self, *names: str) -> None:
        """Refresh these parts again, first from the latest snapshot if they were paused."""
        for name in names:
            if name in self._paused:
                self._paused.discard(name)
                if name in self.built and self.snapshot is not None:
                    self._refresh(name, self.snapshot)

    def _refresh(self, name: str, snap: Snapshot) -> None:
        view = self.__dict__[f"_{name}"]
        if name in _PLAIN_TABLES:
            view.value = _for_display(getattr(snap, name))
        elif name == "daily":
            view.update(snap.daily)
        elif name == "symbols":
            symbols = snap.symbols.copy()
            symbols["win_rate"] = [("–" if v is None or pd.isna(v) else f"{v:.0%}")
                                   for v in symbols["win_rate"]]
            view.value = symbols
        elif name == "feed":
            view.object = feed_html(snap.feed)
        elif name == "quality":
            view.value = _for_display(pd.DataFrame(snap.feed.get("quality", []),
                                                   columns=COLUMNS["quality"]))
        elif name == "price":
            symbol = snap.summary.get("chart_symbol") or ""
            view.update(snap.bars, snap.indicators, snap.markers,
                        f"{symbol} · last {len(snap.bars)} bars (selected run)"
                        if symbol else PriceChart.TITLE)

    def update(self, snap: Snapshot) -> None:
        """Push ``snap`` into the widgets."""
        s = snap.summary
        cur = s.get("currency", "")
        pnl = s.get("pnl")
        color = "#166534" if (pnl or 0) >= 0 else "#991b1b"
        tiles = [
            stat("Equity", _fmt_money(s.get("equity"), cur), "equity"),
            stat("P&L", (f"{pnl:+,.2f} ({s.get('pnl_pct', 0):+.2%})" if pnl is not None else "–"),
                 "pnl", color),
            stat("Realized", _fmt_money(s.get("realized")), "realized"),
            stat("Unrealized", _fmt_money(s.get("unrealized")), "unrealized"),
            stat("Fees", _fmt_money(s.get("fees")), "fees"),
            stat("Cash", _fmt_money(s.get("cash")), "cash"),
            stat("Drawdown", f"{s.get('drawdown', 0):.2%}" if s else "–", "drawdown"),
            stat("Open orders", str(s.get("open_orders", 0)), "open-orders"),
            stat("Fills", str(snap.fill_count), "fill-count"),
        ]
        a = snap.account_summary
        self.account.object = "" if not a else (
            "<div data-testid='account-wide' style='color:#374151;font-size:13px;padding:2px 0'>"
            "<b>Account (all runs)</b>: cash <span data-testid='account-cash'>"
            f"{_fmt_money(a['cash'], cur)}</span> · open positions <span data-testid="
            f"'account-positions'>{a['open_positions']}</span> · open orders <span data-testid="
            f"'account-orders'>{a['open_orders']}</span> · runs {a['runs']}"
            f" ({a['running']} running)</div>")
        self.kpis.object = ("<div style='display:flex;flex-wrap:wrap;gap:22px;padding:6px 0'>"
                            + "".join(tiles) + "</div>")
        self.kill_switch.object = kill_switch_html(snap.kill_switch)
        last = snap.fills.iloc[0] if len(snap.fills) else None
        last_fill = (f"{last['side']} {last['quantity']:g} {last['symbol']} @ {last['price']:,.2f}"
                     if last is not None else "none yet")
        at = f"{snap.at:%H:%M:%S} UTC" if snap.at else ""
        as_of = s.get("as_of")
        # The bar the figures are marked at (the run's latest equity snapshot).
        marked = (f" · figures as of <span data-testid='as-of' data-at='{as_of.isoformat()}'>"
                  f"{as_of:%Y-%m-%d %H:%M} UTC</span>" if as_of is not None else "")
        self.status.object = (
            f"<div style='color:#6b7280;font-size:12px'><span data-testid='run-label' data-run="
            f"'{s.get('run') or ''}'>{html.escape(s.get('run_label', ''))}</span>{marked}"
            f" · last fill: <span data-testid='last-fill' data-fill-id="
            f"'{html.escape(str(last['fill_id'])) if last is not None else ''}'>"
            f"{html.escape(last_fill)}</span> · refreshed {at}</div>")
        self.positions.value = _for_display(snap.positions)
        self.fills.value = _for_display(snap.fills)
        self.equity.update(snap.equity)
        self.snapshot = snap
        for name in sorted(self.built - self._paused):
            self._refresh(name, snap)


_BUILD: dict[str, Any] = {
    "trades": lambda: _table("trades", height=240, formatters={
        c: _NUM["float"] for c in ("entry_price", "exit_price", "fees", "pnl")}),
    "daily": lambda: DailyChart(height=240),
    "price": lambda: PriceChart(height=360),
    "symbols": lambda: _table("symbols", height=160, formatters={
        "win_rate": {"type": "plaintext"},  # text ("60%", "–"): no number formatting
        **{c: _NUM["float"] for c in ("pnl", "realized", "unrealized", "fees")}}),
    "feed": lambda: pn.pane.HTML(feed_html({}), sizing_mode="stretch_width"),
    "quality": lambda: _table("quality", height=140),
    "risk_events": lambda: _table("risk_events", height=240),
    "events": lambda: _table("events", height=240),
    **{name: (lambda name=name: _table(name, height=180))
       for name in ("orders", "runs", "job_runs", "reconciliations")},
}


def section(title: str, *objects: Any, **kw: Any) -> pn.Column:
    """A titled card."""
    kw.setdefault("sizing_mode", "fixed" if "width" in kw else "stretch_width")
    return pn.Column(pn.pane.HTML(f"<h3 style='margin:4px 0'>{html.escape(title)}</h3>"),
                     *objects, styles=CARD, **kw)


class LazySection:
    """A titled card, closed at first, whose content is built when it is first opened.

    While closed its parts are paused (:meth:`LiveViews.pause`: not refreshed, nobody
    sees them); opened again, they show the latest snapshot at once.

    Parameters
    ----------
    title
        The card's title (its header is what the user clicks).
    views
        The :class:`LiveViews` the content belongs to.
    parts
        The lazy parts (:data:`LAZY_PARTS`) the content shows.
    content
        Returns the content's objects (reading the parts off ``views`` builds them).
    """

    def __init__(self, title: str, views: LiveViews, parts: tuple[str, ...],
                 content: Callable[[], list[Any]], **kw: Any) -> None:
        kw.setdefault("sizing_mode", "stretch_width")
        self.title, self.views, self.parts, self._content = title, views, parts, content
        self.card = pn.Card(title=title, collapsed=True, styles={"background": "white"},
                            margin=(5, 5), **kw)
        self.card.param.watch(self._toggled, "collapsed")

    @property
    def is_open(self) -> bool:
        return not self.card.collapsed

    def open(self) -> None:
        """Open it (as a click on its header does): built the first time."""
        self.card.collapsed = False

    def close(self) -> None:
        self.card.collapsed = True

    def _toggled(self, event: Any) -> None:
        if event.new:  # closed
            self.views.pause(*self.parts)
            return
        with pn.io.hold():  # one patch: the content arrives filled
            if not self.card.objects:
                self.card.objects = list(self._content())
            self.views.resume(*self.parts)

    def __panel__(self) -> pn.Card:
        return self.card


__all__ = ["LAZY_PARTS", "LazySection", "LiveViews", "kill_switch_html", "section", "stat"]
