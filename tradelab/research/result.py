"""What a backtest returns: stats, trades, orders, equity, drawdown, plots."""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tradelab.research import metrics
from tradelab.research.conventions import Execution, TradeSpec
from tradelab.research.simulate import portfolio_metrics

TRADE_COLUMNS = ("entry_time", "exit_time", "side", "quantity", "entry_price", "exit_price",
                 "fees", "pnl", "return", "status", "exit_reason")
ORDER_COLUMNS = ("time", "side", "quantity", "price", "fees")


def _signal_or_open(records: np.ndarray) -> np.ndarray:
    out = np.full(len(records), "signal", dtype=object)
    out[records["status"] == 0] = None
    return out


def exit_reasons(records: np.ndarray, bars: pd.DataFrame, trade: TradeSpec,
                 signals: Any = None, next_open: bool = True) -> np.ndarray:
    """Why each trade closed: ``"sl"``, ``"tp"``, ``"trail"``, ``"time"`` or ``"signal"``
    (None: open).

    vectorbt does not record it, so each trade with declared exits is replayed bar by
    bar from the bar after its entry with :func:`tradelab.strategy.exits.apply_exits`
    (the rules vectorbt applies; its ``stop_price`` equals vectorbt's, bit for bit): a
    stop that fires on the exit bar closed the trade; otherwise a close (not a
    reversal) once the time stop was due is ``"time"`` (the engine's label: its exit
    flag is set from then on), and anything else a signal (an exit, or an opposite
    entry).
    """
    from tradelab.strategy.exits import StopState, apply_exits

    out = _signal_or_open(records)
    per_bar = {k: getattr(signals, k, None) for k in ("sl_stop", "tp_stop")}
    if not trade.stops.active and all(v is None for v in per_bar.values()):
        return out
    opens, highs, lows, closes = (bars[c].to_numpy(dtype=float) if c in bars.columns
                                  else np.full(len(bars), np.nan)
                                  for c in ("open", "high", "low", "close"))
    fractions = {k: None if v is None else np.asarray(v, dtype=float).reshape(len(bars), -1)[:, 0]
                 for k, v in per_bar.items()}
    for j, rec in enumerate(records):
        if rec["status"] == 0:
            continue
        entry, exit_ = int(rec["entry_idx"]), int(rec["exit_idx"])
        decided = entry - 1 if next_open else entry  # the bar a per-bar fraction is read at
        sl, tp = (None if f is None or decided < 0 else float(f[decided])
                  for f in (fractions["sl_stop"], fractions["tp_stop"]))
        state = StopState.opened(-1 if rec["direction"] == 1 else 1, float(rec["entry_price"]),
                                 trade.stops, sl=sl, tp=tp)
        for i in range(entry + 1, exit_ + 1):
            hit = apply_exits(state, opens[i], highs[i], lows[i], closes[i])
            if hit is not None:
                out[j] = hit.reason if i == exit_ else "signal"
                break
        else:
            due = trade.stops.time_bars is not None and \
                exit_ - entry >= trade.stops.time_bars + (1 if next_open else 0)
            reversed_ = j + 1 < len(records) and int(records[j + 1]["entry_idx"]) == exit_ \
                and records[j + 1]["direction"] != rec["direction"]
            if due and not reversed_:
                out[j] = "time"
    return out


def trades_frame(records: np.ndarray, index: pd.DatetimeIndex,
                 reasons: np.ndarray | None = None) -> pd.DataFrame:
    """vectorbt trade records → the trades table (see :class:`BacktestResult`)."""
    is_open = records["status"] == 0
    exit_time = pd.Series(index[records["exit_idx"]], dtype=index.dtype)
    exit_time[is_open] = pd.NaT
    return pd.DataFrame({
        "entry_time": index[records["entry_idx"]],
        "exit_time": exit_time.to_numpy(),
        # vectorbt's TradeDirection: 0 long, 1 short
        "side": np.where(records["direction"] == 1, "short", "long"),
        "quantity": records["size"].astype(float),
        "entry_price": records["entry_price"].astype(float),
        "exit_price": np.where(is_open, np.nan, records["exit_price"]),
        "fees": (records["entry_fees"] + records["exit_fees"]).astype(float),
        "pnl": records["pnl"].astype(float),
        "return": records["return"].astype(float),
        "status": np.where(is_open, "open", "closed"),
        "exit_reason": _signal_or_open(records) if reasons is None else reasons,
    }, columns=list(TRADE_COLUMNS))


def orders_frame(records: np.ndarray, index: pd.DatetimeIndex) -> pd.DataFrame:
    """vectorbt order records → the orders table (see :class:`BacktestResult`)."""
    return pd.DataFrame({
        "time": index[records["idx"]],
        "side": np.where(records["side"] == 0, "buy", "sell"),
        "quantity": records["size"].astype(float),
        "price": records["price"].astype(float),
        "fees": records["fees"].astype(float),
    }, columns=list(ORDER_COLUMNS))


@dataclass(eq=False)
class BacktestResult:
    """One backtest: one strategy, one parameter set, one convention, one bar series.

    Attributes
    ----------
    stats : dict
        ``total_return, cagr, sharpe, sortino, max_drawdown, win_rate, n_trades,
        exposure, final_equity`` as defined in :mod:`tradelab.research.metrics`
        (fractions, not percent; ``max_drawdown`` <= 0), plus ``start`` and
        ``end`` (first and last bar time) and ``bars`` (number of bars), and
        ``benchmark_return`` (buy-and-hold over the same bars, see :attr:`benchmark`)
        with ``excess_return`` (``total_return - benchmark_return``).
    trades : pandas.DataFrame
        One row per round trip: ``entry_time, exit_time, side ("long"/"short"), quantity,
        entry_price, exit_price`` (fill prices after slippage), ``fees`` (entry +
        exit), ``pnl`` (after fees), ``return`` (pnl / (quantity * entry_price)),
        ``status`` ("open"/"closed"), ``exit_reason`` ("signal", or the declared exit
        that closed it: "sl", "tp", "trail"; None while open, see :func:`exit_reasons`).
        An open trade has no exit time or price; its pnl and return are marked at the
        last close without exit fees.
    orders : pandas.DataFrame
        Every fill: ``time`` (the bar it filled on), ``side`` ("buy"/"sell"),
        ``quantity``, ``price`` (after slippage), ``fees``. This is the list the
        engine's parity check compares against.
    equity : pandas.Series
        Cash plus position marked at each bar's close (a short's units count negative).
    position : pandas.Series
        Units held at each bar's close (negative: short).
    trade : TradeSpec
        The direction and declared exits the run traded with.
    """

    strategy: str
    params: dict[str, Any]
    execution: Execution
    periods_per_year: float
    bars: pd.DataFrame = field(repr=False)
    equity: pd.Series = field(repr=False)
    position: pd.Series = field(repr=False)
    stats: dict[str, Any] = field(repr=False)
    trades: pd.DataFrame = field(repr=False)
    orders: pd.DataFrame = field(repr=False)
    entries: pd.Series | None = field(default=None, repr=False)
    exits: pd.Series | None = field(default=None, repr=False)
    #: The underlying ``vbt.Portfolio`` for anything not covered here.
    portfolio: Any = field(default=None, repr=False)
    #: Buy-and-hold over the same bars (:func:`tradelab.research.metrics.buy_and_hold`).
    benchmark: dict[str, float] = field(default_factory=dict, repr=False)
    #: Direction and stops (long-only without stops unless given).
    trade: TradeSpec = field(default_factory=TradeSpec)
    #: The strategy's per-bar stop fractions in use (``"sl_stop"``, ``"tp_stop"``).
    per_bar_stops: tuple[str, ...] = ()

    @classmethod
    def from_portfolio(cls, pf: Any, *, strategy: Any, bars: pd.DataFrame,
                       execution: Execution, periods_per_year: float,
                       signals: Any = None, trade: TradeSpec | None = None) -> BacktestResult:
        """Build from a one-column ``vbt.Portfolio``."""
        from tradelab.research._replay import equity_and_position

        index = bars.index
        # pf.value() and pf.assets(), replayed without seven numba kernel loads
        equity_values, held = equity_and_position(pf, execution.cash)
        equity = pd.Series(equity_values, index=index, name="equity")
        position = pd.Series(held, index=index, name="position")
        per_col = portfolio_metrics(pf, execution.cash, periods_per_year)
        stats: dict[str, Any] = {k: v[0].item() for k, v in per_col.items()}
        stats.update(start=index[0], end=index[-1], bars=len(index))
        benchmark = metrics.buy_and_hold(bars["close"].to_numpy(), execution.cash, periods_per_year)
        # Next to the strategy's own figures: did it beat simply holding the instrument?
        stats.update(benchmark_return=benchmark["total_return"],
                     excess_return=stats["total_return"] - benchmark["total_return"])
        return cls(strategy=strategy.name, params=dict(strategy.params), execution=execution,
                   periods_per_year=periods_per_year, bars=bars, equity=equity,
                   position=position, stats=stats,
                   trades=trades_frame(pf.trades.values, index, exit_reasons(
                       pf.trades.values, bars, trade or TradeSpec(), signals,
                       execution.fill == "next_open")),
                   orders=orders_frame(pf.orders.values, index),
                   entries=None if signals is None else signals.entries,
                   exits=None if signals is None else signals.exits,
                   portfolio=pf, benchmark=benchmark, trade=trade or TradeSpec(),
                   per_bar_stops=tuple(k for k in ("sl_stop", "tp_stop")
                                       if getattr(signals, k, None) is not None))

    # -- derived -----------------------------------------------------------------
    @property
    def final_equity(self) -> float:
        return float(self.stats["final_equity"])

    @property
    def drawdown(self) -> pd.Series:
        """``equity / running peak - 1`` (<= 0); the initial cash is the first peak."""
        dd = metrics.drawdown(self.equity.to_numpy(), self.execution.cash)
        return pd.Series(dd, index=self.equity.index, name="drawdown")

    @property
    def title(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.strategy}({args})"

    # -- export --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary: strategy, params, execution, direction, stops, stats,
        trades and orders (every fill; lists of dicts; NaN/NaT → None, times as ISO
        strings)."""
        return metrics.json_safe({
            "strategy": self.strategy,
            "params": self.params,
            "execution": asdict(self.execution),
            "direction": self.trade.direction,
            "stops": asdict(self.trade.stops),
            "per_bar_stops": list(self.per_bar_stops),
            "periods_per_year": self.periods_per_year,
            "stats": self.stats,
            "benchmark": self.benchmark,
            "trades": self.trades.to_dict("records"),
            "orders": self.orders.to_dict("records"),
        })

    def plot(self) -> Any:
        """Equity, drawdown and trades on price, stacked (a holoviews Layout)."""
        from tradelab.research.plots import plot_result

        return plot_result(self)

    # -- Jupyter -----------------------------------------------------------------
    def stats_table(self) -> pd.DataFrame:
        """The stats formatted for people (one column)."""
        return pd.DataFrame({"value": [format_stat(k, v) for k, v in self.stats.items()]},
                            index=list(self.stats))

    def _repr_html_(self) -> str:
        trades = self.trades
        shown = trades if len(trades) <= 20 else pd.concat([trades.head(10), trades.tail(10)])
        more = "" if len(trades) <= 20 else f"<p>{len(trades)} trades; first and last 10 shown.</p>"
        return (f"<div><h4>{html.escape(self.title)}</h4>"
                f"<div style='display:flex;gap:2em;align-items:flex-start'>"
                f"{self.stats_table().to_html(header=False)}"
                f"<div>{shown.to_html(index=False, float_format=lambda x: f'{x:,.4f}')}"
                f"{more}</div></div></div>")

    def __repr__(self) -> str:
        s = self.stats
        return (f"<BacktestResult {self.title}: final_equity={s['final_equity']:,.2f} "
                f"total_return={s['total_return']:.2%} sharpe={s['sharpe']:.3f} "
                f"max_drawdown={s['max_drawdown']:.2%} n_trades={s['n_trades']}>")


_PERCENT = {"total_return", "cagr", "max_drawdown", "win_rate", "exposure", "return",
            "benchmark_return", "excess_return"}


def format_stat(name: str, value: Any) -> str:
    """A stat as text: percentages for fractions, thousands separators for money."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    if name in _PERCENT:
        return f"{value:.2%}"
    if name == "final_equity":
        return f"{value:,.2f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M") if (value.hour or value.minute) else f"{value:%Y-%m-%d}"
    return str(value)
