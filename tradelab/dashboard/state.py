"""The dashboard's data: a cheap change check and the snapshot it refreshes from.

The engine and the dashboard are usually separate processes sharing the store,
so the dashboard polls. :func:`store_version` is one small query (a handful of
``max(id)`` index lookups); only when it changes does :func:`load_snapshot`
re-read the views' data with the same store reads the REST API uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import pandas as pd
import param

from tradelab.dashboard.runextra import (
    BAR_COLUMNS,
    MARKER_COLUMNS,
    SYMBOL_COLUMNS,
    chart_data,
    feed_health,
    symbol_performance,
)
from tradelab.dashboard.runview import (
    DAILY_COLUMNS,
    POSITION_COLUMNS,
    TRADE_COLUMNS,
    closed_trades,
    daily_pnl,
    run_figures,
)
from tradelab.store.auth_repo import accounts as list_accounts
from tradelab.store.close_repo import close_requests
from tradelab.store.dashboard_reads import chart_symbol, pick_run, run_rows

if TYPE_CHECKING:
    from tradelab.store import Store

FILLS_SHOWN = 100
EVENTS_SHOWN = 50
RUNS_SHOWN = 20
EQUITY_POINTS = 5000
CLOSES_SHOWN = 5

def store_version(store: Store) -> tuple[Any, ...]:
    """A value that changes whenever anything the dashboard shows changes (one round trip)."""
    from tradelab.store.reads import change_marker

    return change_marker(store)


COLUMNS = {
    "equity": ["at", "equity", "drawdown"],
    "positions": POSITION_COLUMNS,
    "trades": TRADE_COLUMNS,
    "daily": DAILY_COLUMNS,
    "orders": ["created_at", "client_order_id", "symbol", "side", "type", "quantity", "filled",
               "status"],
    "fills": ["at", "run", "fill_id", "symbol", "side", "quantity", "price", "fees"],
    "risk_events": ["at", "severity", "rule", "strategy", "message"],
    "runs": ["id", "strategy", "symbol", "mode", "status", "started_at", "last_bar"],
    "job_runs": ["id", "job", "status", "trigger", "started_at", "finished_at"],
    "reconciliations": ["at", "venue", "trigger", "run", "ok", "booked_fills", "findings"],
    "events": ["at", "kind", "symbol", "event", "detail"],
    "symbols": SYMBOL_COLUMNS,
    "bars": BAR_COLUMNS,
    "markers": MARKER_COLUMNS,
    "quality": ["last_at", "kind", "reason", "symbol", "count"],
}


def _blank(name: str) -> pd.DataFrame:
    return pd.DataFrame(columns=COLUMNS[name])


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=columns)
    for col in df.columns:  # Decimals → floats, aware datetimes stay
        if len(df) and df[col].map(lambda v: type(v).__name__ == "Decimal").any():
            df[col] = df[col].astype(float)
    return df


@dataclass(frozen=True)
class Snapshot:
    """Everything the views show for one run of one account, read at ``at``.

    ``summary`` holds the selected run's figures (``run`` is its id); ``account_summary``
    the account-wide ones (its cash and open orders, every run's open positions).
    """

    account: str
    at: datetime | None = None
    accounts: tuple[str, ...] = ()
    summary: dict[str, Any] = field(default_factory=dict)
    equity: pd.DataFrame = field(default_factory=partial(_blank, "equity"))
    positions: pd.DataFrame = field(default_factory=partial(_blank, "positions"))
    orders: pd.DataFrame = field(default_factory=partial(_blank, "orders"))
    fills: pd.DataFrame = field(default_factory=partial(_blank, "fills"))
    risk_events: pd.DataFrame = field(default_factory=partial(_blank, "risk_events"))
    kill_switch: Any = None
    runs: pd.DataFrame = field(default_factory=partial(_blank, "runs"))
    job_runs: pd.DataFrame = field(default_factory=partial(_blank, "job_runs"))
    #: Comparisons with a live venue (``tradelab broker reconcile`` and the engine's own).
    reconciliations: pd.DataFrame = field(default_factory=partial(_blank, "reconciliations"))
    strategies: tuple[dict[str, Any], ...] = ()
    jobs: tuple[str, ...] = ()
    fill_count: int = 0
    #: ``(label, run id)`` of the account's runs, newest first: what the run selector offers.
    run_options: tuple[tuple[str, int], ...] = ()
    account_summary: dict[str, Any] = field(default_factory=dict)
    trades: pd.DataFrame = field(default_factory=partial(_blank, "trades"))
    daily: pd.DataFrame = field(default_factory=partial(_blank, "daily"))
    #: The selected run's order transitions and data-quality outcomes, newest first.
    events: pd.DataFrame = field(default_factory=partial(_blank, "events"))
    #: The selected run's performance per symbol (sums to its P&L tile).
    symbols: pd.DataFrame = field(default_factory=partial(_blank, "symbols"))
    #: The price chart: the run's newest bars of its symbol, the strategy's indicators
    #: over them (name → values aligned with ``bars``) and the run's fills as markers.
    bars: pd.DataFrame = field(default_factory=partial(_blank, "bars"))
    indicators: dict[str, list[float]] = field(default_factory=dict)
    markers: pd.DataFrame = field(default_factory=partial(_blank, "markers"))
    #: Feed health of the selected run (see :func:`tradelab.dashboard.runextra.feed_health`).
    feed: dict[str, Any] = field(default_factory=dict)
    #: The selected run's close requests (the dashboard's "Close position"), newest first.
    closes: tuple[Any, ...] = ()


def _label(run: Any) -> str:
    return f"run {run.id} · {run.strategy} on {run.symbol} ({run.status})"


def load_snapshot(store: Store, account: str, control: Any = None, *,
                  now: datetime | None = None, fills_shown: int = FILLS_SHOWN,
                  run_id: int | None = None) -> Snapshot:
    """Read the views' data for one run of ``account`` (empty if the account does not exist).

    ``run_id`` picks the run (default, or when it is not one of the account's: the
    running one, else the latest); every per-run figure comes from that run's own rows
    (see :mod:`tradelab.dashboard.runview`).
    """
    names = tuple(a.name for a in list_accounts(store))
    if account not in names:
        return Snapshot(account=account, at=now, accounts=names,
                        strategies=tuple(_strategies(control, None)), jobs=tuple(_jobs(control)),
                        job_runs=_job_runs(control))
    state = store.account_state(account)
    rows = run_rows(store, account, run_id)
    run, all_runs, curve, fills, marks = rows.run, rows.runs, rows.curve, rows.fills, rows.marks
    acct = state.account
    orders = rows.open_orders
    fig = run_figures(fills, rows.last, marks, float(acct.initial_cash))
    equity = _frame([{"at": p.at, "equity": p.equity, "drawdown": p.drawdown}
                     for p in curve[-EQUITY_POINTS:]], COLUMNS["equity"])
    daily = daily_pnl(_frame([{"at": p.at, "equity": p.equity} for p in curve], ["at", "equity"]),
                      fig.start_cash)
    summary = {
        "currency": acct.currency, "start_cash": fig.start_cash, "cash": fig.cash,
        "equity": fig.equity, "pnl": fig.pnl, "pnl_pct": fig.pnl_pct, "realized": fig.realized,
        "unrealized": fig.unrealized, "fees": fig.fees, "drawdown": fig.drawdown,
        "open_orders": len(orders), "fills": len(fills),
        "run": run.id if run is not None else None,
        "run_status": run.status if run is not None else None,
        "run_label": _label(run) if run is not None else "no engine run yet",
        "last_bar": run.last_bar_time if run is not None else None,
        "as_of": fig.at,
        "chart_symbol": chart_symbol(run) if run is not None else None,
    }
    account_summary = {
        "cash": float(acct.cash), "open_orders": len(state.open_orders),
        "open_positions": sum(1 for p in state.positions if p.quantity != 0),
        "runs": len(all_runs), "running": sum(1 for r in all_runs if r.status == "running"),
    }
    ks = state.kill_switch
    rid = run.id if run is not None else None
    trades = closed_trades(fills, marks)
    bars, indicators, markers = chart_data(run, rows.bars, fills,
                                           getattr(control, "registry", None))
    return Snapshot(
        account=account, at=now, accounts=names, summary=summary, equity=equity,
        positions=fig.positions,
        orders=_frame([{"created_at": o.created_at, "client_order_id": o.client_order_id,
                        "symbol": o.symbol, "side": o.side, "type": o.type,
                        "quantity": o.quantity, "filled": o.filled_quantity, "status": o.status}
                       for o in reversed(orders)],
                      COLUMNS["orders"]),
        fills=_frame([{"at": f.at, "run": rid, "fill_id": f.fill_id, "symbol": f.symbol,
                       "side": f.side, "quantity": f.quantity, "price": f.price, "fees": f.fees}
                      for f in reversed(fills[-fills_shown:])],
                     COLUMNS["fills"]),
        risk_events=_frame([{"at": e.at, "severity": e.severity, "rule": e.rule,
                             "strategy": e.strategy, "message": e.message}
                            for e in reversed(store.risk_events(account)[-EVENTS_SHOWN:])],
                           COLUMNS["risk_events"]),
        kill_switch=ks,
        runs=_frame([{"id": r.id, "strategy": r.strategy, "symbol": r.symbol, "mode": r.mode,
                      "status": r.status, "started_at": r.started_at,
                      "last_bar": r.last_bar_time}
                     for r in reversed(all_runs[-RUNS_SHOWN:])],
                    COLUMNS["runs"]),
        job_runs=_job_runs(control),
        reconciliations=_reconciliations(store, account),
        strategies=tuple(_strategies(control, account)),
        jobs=tuple(_jobs(control)),
        fill_count=len(fills),
        run_options=tuple((_label(r), r.id) for r in reversed(all_runs)),
        account_summary=account_summary,
        trades=trades,
        symbols=symbol_performance(fills, rows.last, fig.positions, trades),
        bars=bars, indicators=indicators, markers=markers,
        feed=feed_health(rows.feed, rows.bars, now) if run is not None else {},
        daily=daily,
        events=_frame(rows.events, COLUMNS["events"]),
        closes=tuple(reversed(close_requests(store, account, rid)[-CLOSES_SHOWN:]))
        if rid is not None else (),
    )


def _reconciliations(store: Store, account: str) -> pd.DataFrame:
    rows = [{"at": r.at, "venue": r.venue, "trigger": r.trigger, "run": r.run_id,
             "ok": "ok" if r.ok else "MISMATCH", "booked_fills": r.booked_fills,
             "findings": "; ".join(f"{f.get('kind')} {f.get('symbol') or ''}".strip()
                                   for f in r.findings) or "nothing to fix"}
            for r in store.reconcile.reconciliations(account, limit=EVENTS_SHOWN)]
    return _frame(rows, COLUMNS["reconciliations"])


def _strategies(control: Any, account: str | None) -> list[dict[str, Any]]:
    if control is None:
        return []
    return [{"name": s["name"], "enabled": s["enabled"], "changed_by": s["changed_by"]}
            for s in control.strategies(account)]


def _jobs(control: Any) -> list[str]:
    return [j["name"] for j in control.jobs()] if control is not None else []


def _job_runs(control: Any) -> pd.DataFrame:
    cols = COLUMNS["job_runs"]
    if control is None:
        return _frame([], cols)
    rows = []
    for r in control.job_runs(None, RUNS_SHOWN):
        d = r.get("detail", {})
        rows.append({"id": r["id"], "job": r["job"], "status": r["status"],
                     "trigger": d.get("trigger"), "started_at": d.get("started_at"),
                     "finished_at": d.get("finished_at")})
    return _frame(rows, cols)


class DashboardState(param.Parameterized):
    """The data behind one dashboard session, refreshed only when the store changed.

    Views watch :attr:`snapshot`; :meth:`poll` is what the periodic callback
    calls (every ``poll_ms`` milliseconds when served).
    """

    account = param.String(default="paper", doc="the account shown")
    snapshot = param.Parameter(default=None, doc="the latest Snapshot")
    version = param.Parameter(default=None, doc="store_version() at the last refresh")
    refreshes = param.Integer(default=0, doc="how many times the snapshot was re-read")
    run = param.Integer(default=None, allow_None=True,
                        doc="the run shown (None: the running one, else the latest)")

    def __init__(self, store: Store, control: Any = None, **params: Any) -> None:
        super().__init__(**params)
        self.store, self.control = store, control
        self.refresh()

    def poll(self) -> bool:
        """Re-read the snapshot if the store changed since the last read; whether it did."""
        if store_version(self.store) == self.version:
            return False
        self.refresh()
        return True

    def refresh(self) -> None:
        """Re-read everything now."""
        version = store_version(self.store)  # before the reads: a change in between re-polls
        snap = load_snapshot(self.store, self.account, self.control,
                             now=pd.Timestamp.now(tz="UTC").to_pydatetime(), run_id=self.run)
        self.param.update(version=version, snapshot=snap, refreshes=self.refreshes + 1)

    @param.depends("account", watch=True)
    def _account_changed(self) -> None:
        if self.run is not None:  # another account's run: back to its live one
            self.run = None  # (which refreshes)
        else:
            self.refresh()

    @param.depends("run", watch=True)
    def _run_changed(self) -> None:
        self.refresh()


__all__ = ["DashboardState", "Snapshot", "load_snapshot", "pick_run", "store_version"]
