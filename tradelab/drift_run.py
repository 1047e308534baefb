"""The drift report of a stored run (``tradelab parity --run RUN``) and its alert.

Loads what the run received and did from the store (its bars from ``run_bars``,
fills, orders, equity curve, strategy and parameters), re-runs research over
those bars with the configured convention (see :mod:`tradelab.drift`), compares
the bars with the run's source where it can, and raises a notification when the
drift is above ``[live] drift_threshold``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
import structlog

from tradelab.drift import DriftReport, drift_report
from tradelab.errors import TradelabError
from tradelab.execution import Execution

log = structlog.get_logger("tradelab.drift")
_INCOMPLETE = ("cancelled", "expired", "rejected", "new", "pending", "submitted", "partially_filled")


def run_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """``run_bars`` rows of one symbol as contract bars (UTC DatetimeIndex, float columns)."""
    frame = pd.DataFrame(rows, columns=["symbol", "at", "open", "high", "low", "close", "volume"])
    index = pd.DatetimeIndex(pd.to_datetime(frame["at"], utc=True), name=None)
    return frame.drop(columns=["symbol", "at"]).set_index(index).astype(float)


def initial_cash(curve: list[Any], fills: list[Any], default: float) -> float:
    """The run's cash before its first bar: the first snapshot's cash with that bar's fills undone."""
    if not curve:
        return float(default)
    first = curve[0]
    cash = Decimal(first.cash)
    for f in fills:
        if f.at <= first.at:
            flow = f.quantity * f.price
            cash += flow + f.fees if f.side == "buy" else -(flow - f.fees)
    return float(cash)


def run_drift(app: Any, run_id: int, *, store: Any = None, execution: Execution | None = None,
              threshold: float | None = None, source: str | None = None,
              compare_source: bool = True, trade: dict[str, Any] | None = None) -> DriftReport:
    """The drift report of run ``run_id``.

    Parameters
    ----------
    app
        A :class:`tradelab.app.App` (strategies, execution convention, data, settings).
    run_id
        The run.
    store
        The run's store (default ``app.store``).
    execution
        The research convention (default: the one stored with the run; for a run started
        before it was stored, ``app.execution``, i.e. ``[research]``).
    threshold
        Drift above which the report is exceeded (default ``[live] drift_threshold``).
    source
        Where to compare the bars with (default the run's source; ``""``: do not).
    compare_source
        Compare the run's bars with the source's at all.
    trade
        ``direction=, sl=, tp=, trail=, time_stop=`` of the research side (``None``
        values: the strategy's own; default: the options stored with the run, if any).

    Raises
    ------
    TradelabError
        Unknown run, or no recorded bars. A run over several symbols (a portfolio
        strategy's) is compared by :mod:`tradelab.drift_portfolio`.
    """
    from tradelab.store.run_bars_repo import run_bars

    store = store if store is not None else app.store
    run = store.get_run(run_id)
    if run is None:
        raise TradelabError(f"unknown run id {run_id}")
    rows = run_bars(store, run_id)
    symbols = sorted({r["symbol"] for r in rows})
    if not rows:
        raise TradelabError(f"run {run_id} has no recorded bars (recorded since migration 0007)")
    fills = store.fills(run.account, run_id)
    curve = store.equity_curve(run.account, run_id)
    # Default: the convention the run was started with (an older run's is unknown: [research]).
    ex = execution if execution is not None else Execution(**run.execution) if run.execution \
        else app.execution
    cash0 = initial_cash(curve, fills, ex.cash)
    equity = float(curve[-1].equity) if curve else cash0
    unfilled = [(o.created_at, o.symbol, o.side) for o in store.orders(run.account, run_id)
                if o.status in _INCOMPLETE and o.filled_quantity < o.quantity]
    limit = app.settings.live.drift_threshold if threshold is None else threshold
    src = run.source if source is None else source
    if len(symbols) > 1:
        return _portfolio_drift(app, run, rows, fills, ex, cash0, equity, unfilled, limit,
                                src if compare_source else "")
    bars = run_frame(rows)
    trade = trade if trade is not None else run.trade()
    source_bars, error = None, None
    if compare_source and src:
        source_bars, error = _source_bars(app, symbols[0], src, bars)
    strategy = app.strategy(run.strategy, **(run.params or {}))
    return drift_report(strategy, bars, fills, ex, run_equity=equity, initial_cash=cash0,
                        symbol=symbols[0], run_id=run_id,
                        unfilled=[(at, side) for at, _symbol, side in unfilled],
                        source_bars=source_bars, source=src or "", source_error=error,
                        threshold=limit, trade=trade)


def _source_bars(app: Any, symbol: str, source: str, bars: pd.DataFrame
                 ) -> tuple[pd.DataFrame | None, str | None]:
    """The source's bars of ``symbol`` over ``bars``' period, or why there are none."""
    try:
        return app.bars(symbol, source=source, start=bars.index[0], end=bars.index[-1]), None
    except Exception as exc:  # a live feed's source may be gone: the report says so
        return None, f"{type(exc).__name__}: {exc}"


def _portfolio_drift(app: Any, run: Any, rows: list[dict[str, Any]], fills: list[Any],
                     ex: Execution, cash0: float, equity: float,
                     unfilled: list[tuple[Any, str, str]], limit: float,
                     source: str) -> DriftReport:
    """The drift report of a portfolio run (:mod:`tradelab.drift_portfolio`): its strategy
    over its universe in the run's order, on the bars it received; compared with
    ``source``'s bars unless it is empty."""
    from tradelab.drift_portfolio import portfolio_drift_report

    universe = [s for s in (run.symbol or "").split(",") if s]
    strategy = app.portfolio_strategy(run.strategy, run.params or {})
    frames = {s: run_frame([r for r in rows if r["symbol"] == s]) for s in universe}
    loaded: dict[str, pd.DataFrame] | None = None
    error = None
    if source:
        loaded = {}
        for s, f in frames.items():
            got, error = _source_bars(app, s, source, f)
            if got is None:
                loaded = None
                break
            loaded[s] = got
    return portfolio_drift_report(strategy, frames, fills, ex, run_equity=equity,
                                  initial_cash=cash0, run_id=run.id, source=source,
                                  unfilled=unfilled, source_frames=loaded,
                                  source_error=error, threshold=limit)


def check_run(app: Any, run_id: int, *, store: Any = None, **options: Any
              ) -> tuple[DriftReport, int]:
    """:func:`run_drift`, and above the threshold its :func:`alert` through the configured
    channels (delivered before this returns, bounded by ``[notify] shutdown_grace``).

    What ``tradelab parity --run`` and a scheduled job's notebook do after a run.

    Returns
    -------
    (DriftReport, int)
        The report and how many notifications were queued.
    """
    store = store if store is not None else app.store
    report = run_drift(app, run_id, store=store, **options)
    if not report.exceeded:
        return report, 0
    account = getattr(store.get_run(run_id), "account", "")
    notifier = app.notifier(store)
    try:
        return report, alert(report, notifier, account)
    finally:
        notifier.close()  # delivers what is queued


def alert(report: DriftReport, notifier: Any, account: str = "") -> int:
    """Notify a drift above the threshold as a ``risk_alert`` (rule ``drift``); how many were queued.

    The context is a risk alert's, so the ``risk_alert`` template and the channels'
    routing of risk alerts apply unchanged.
    """
    if not report.exceeded:
        return 0
    causes = ", ".join(f"{k} {v:+,.2f}" for k, v in report.by_cause.items() if v)
    message = (f"run {report.run_id} ({report.strategy} on {report.symbol}) drifted "
               f"{report.drift:.2%} from research (threshold {report.threshold:.2%}): "
               f"gap {report.gap:+,.2f}" + (f"; {causes}" if causes else ""))
    log.info("drift_exceeded", run_id=report.run_id, drift=report.drift, threshold=report.threshold)
    return int(notifier.notify("risk_alert", {
        "account": account, "rule": "drift", "message": message, "strategy": report.strategy,
        "client_order_id": None, "at": pd.Timestamp.now(tz="UTC").isoformat(), "halts_trading": False,
        "run_id": report.run_id, "drift": report.drift, "threshold": report.threshold},
        severity="warning", reference=f"run:{report.run_id}"))


__all__ = ["alert", "check_run", "initial_cash", "run_drift", "run_frame"]
