"""What a portfolio backtest returns: equity, weights, exposure, turnover and figures.

Figures (portfolio and per symbol) follow the definitions of
:mod:`tradelab.research.metrics` (total return, CAGR, Sharpe, Sortino, max
drawdown on the equity at each close). Besides:

turnover
    Per rebalance: traded value (``|quantity| × fill price`` summed over the orders)
    divided by the equity at that bar's close; ``turnover_per_year`` is their sum
    divided by the years of bars.
exposure
    ``long``: value of long positions / equity; ``short``: value of short positions
    (a positive number) / equity; ``gross = long + short``; ``net = long - short``.
    The stats report their means over the bars.
per symbol
    ``pnl``: the symbol's final position at the last close, minus what was paid for
    it, plus what was received (fees included); ``contribution``: ``pnl`` / initial
    cash (the contributions add up to the total return); ``hold_*``: the symbol bought
    and held from its first bar (:func:`tradelab.research.metrics.buy_and_hold`).
benchmark
    Equal-weight buy-and-hold of the universe over the same bars: the initial cash
    split equally among the symbols, each share bought at its symbol's first close
    (held as cash until then) and held, frictionless, so it measures the universe,
    not an alternative strategy. ``benchmark_return`` and ``excess_return``
    (``total_return - benchmark_return``) are in the stats; :meth:`PortfolioResult.plot`
    draws it dotted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tradelab.data.universe import Panel
from tradelab.execution import Execution
from tradelab.money import ZERO, to_decimal
from tradelab.research import metrics

if TYPE_CHECKING:  # pragma: no cover
    from tradelab.strategy.portfolio import PortfolioStrategy

_FIGURES = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "final_equity")


@dataclass(frozen=True)
class PortfolioResult:
    """A portfolio backtest (see the module docstring for the definitions).

    Attributes
    ----------
    equity
        Cash plus positions at each close (vectorbt's ``value()``).
    positions
        Units held after each bar (negative = short).
    weights, targets
        Weights held at each close; the strategy's target weights on rebalance bars.
    exposure
        ``long``, ``short``, ``gross``, ``net`` over time.
    turnover
        Per rebalance (fill) bar.
    orders
        One row per order: ``time`` (fill), ``decided``, ``symbol``, ``side``,
        ``quantity``, ``price``, ``fees`` (exact Decimals).
    stats
        Portfolio figures plus exposure and turnover means and counts.
    per_symbol
        Figures per symbol (index: symbol).
    final_equity_exact
        The Decimal book's final equity (the orders booked exactly, marked at the last
        close); vectorbt's float book agrees with it to rounding.
    pf
        The vectorbt portfolio (one group, shared cash): ``pf.stats()`` and friends.
    """

    strategy: str
    params: dict[str, Any]
    symbols: tuple[str, ...]
    schedule: str
    execution: Execution
    periods_per_year: float
    equity: pd.Series
    positions: pd.DataFrame
    weights: pd.DataFrame
    targets: pd.DataFrame
    exposure: pd.DataFrame
    turnover: pd.Series
    orders: pd.DataFrame
    stats: dict[str, Any]
    per_symbol: pd.DataFrame
    final_equity_exact: Decimal
    pf: Any
    #: Equal-weight buy-and-hold of the universe (see the module docstring).
    benchmark: pd.Series | None = None

    @property
    def title(self) -> str:
        return f"{self.strategy} {self.params}"

    def vbt_stats(self) -> pd.Series:
        """vectorbt's stats of the whole portfolio."""
        return self.pf.stats()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary: strategy, params, execution, stats, per-symbol figures, the
        last weights and the orders (quantities and prices as strings: exact)."""
        orders = [{**o, "quantity": str(o["quantity"]), "price": str(o["price"]),
                   "fees": str(o["fees"])} for o in self.orders.to_dict("records")]
        last = self.weights.iloc[-1]
        return metrics.json_safe({
            "strategy": self.strategy, "params": self.params, "symbols": list(self.symbols),
            "schedule": self.schedule, "execution": asdict(self.execution),
            "periods_per_year": self.periods_per_year, "stats": self.stats,
            "per_symbol": self.per_symbol.reset_index().to_dict("records"),
            "final_equity_exact": str(self.final_equity_exact),
            "last_weights": {str(s): float(v) for s, v in last.items() if v != 0},
            "orders": orders,
        })

    def plot(self) -> Any:
        """Equity over time above the weights held (stacked areas), holoviews."""
        from tradelab.research.plots import _hv, _naive

        _hv()
        equity = self.equity.copy()
        equity.index = _naive(pd.DatetimeIndex(equity.index))
        weights = self.weights.copy()
        weights.index = _naive(pd.DatetimeIndex(weights.index))
        # holoviews formats a title with str.format: the params dict's braces must be doubled
        title = f"{self.title}: equity".replace("{", "{{").replace("}", "}}")
        top = equity.hvplot.line(title=title, ylabel="equity", xlabel="", label="strategy",
                                 width=900, height=300)
        if self.benchmark is not None:
            hold = self.benchmark.copy()
            hold.index = _naive(pd.DatetimeIndex(hold.index))
            top = top * hold.hvplot.line(label="equal-weight buy-and-hold", line_dash="dotted",
                                         color="grey")
        long_part = weights.clip(lower=0)
        short_part = weights.clip(upper=0)
        low = long_part.hvplot.area(stacked=True, ylabel="weight", xlabel="", width=900,
                                    height=300, title="weights (shorts below 0)")
        if (short_part != 0).to_numpy().any():
            low = low * short_part.hvplot.area(stacked=True)
        return (top + low).cols(1)

    def _repr_html_(self) -> str:
        table = pd.DataFrame({"value": pd.Series(self.stats, dtype=object)})
        return (f"<h4>{self.title}</h4>" + table.to_html()
                + self.per_symbol.to_html(float_format=lambda v: f"{v:,.4f}"))


def build_result(strategy: PortfolioStrategy, panel: Panel, execution: Execution,
                 weights: pd.DataFrame, decisions: np.ndarray, size: np.ndarray,
                 orders: list[dict[str, Any]], pf: Any, ppy: float,
                 schedule: Any) -> PortfolioResult:
    """Assemble a :class:`PortfolioResult` from the loop's outputs and vectorbt's book."""
    index = panel.index
    units = np.nancumsum(np.nan_to_num(size, nan=0.0), axis=0)
    positions = pd.DataFrame(units, index=index, columns=panel.close.columns)
    equity = pd.Series(np.asarray(pf.value(), dtype=float), index=index, name="equity")
    frame = pd.DataFrame(orders, columns=["time", "decided", "symbol", "side", "quantity",
                                          "price", "fees"])
    book = _book(panel, execution, equity, positions, frame, int(decisions.sum()), ppy)
    return PortfolioResult(
        strategy=strategy.name, params=strategy.params, symbols=panel.symbols,
        schedule=str(schedule), execution=execution, periods_per_year=ppy, equity=equity,
        positions=positions, weights=book.weights, targets=weights[decisions],
        exposure=book.exposure, turnover=book.turnover, orders=frame, stats=book.stats,
        per_symbol=book.per_symbol, final_equity_exact=book.exact, pf=pf,
        benchmark=book.benchmark)


@dataclass(frozen=True)
class _Book:
    stats: dict[str, Any]
    weights: pd.DataFrame
    exposure: pd.DataFrame
    turnover: pd.Series
    per_symbol: pd.DataFrame
    exact: Decimal
    benchmark: pd.Series


def _book(panel: Panel, execution: Execution, equity: pd.Series, positions: pd.DataFrame,
          frame: pd.DataFrame, n_rebalances: int, ppy: float) -> _Book:
    """The figures of a book (equity and units after each bar, the orders): shared by a
    backtest and an engine run (:func:`engine_summary`), so both mean the same."""
    index = panel.index
    close = panel.close.bfill()
    value = positions * close
    w = value.div(equity, axis=0)
    long_ = value.clip(lower=0).sum(axis=1) / equity
    short = -value.clip(upper=0).sum(axis=1) / equity
    exposure = pd.DataFrame({"long": long_, "short": short, "gross": long_ + short,
                             "net": long_ - short})
    traded = frame.assign(v=[float(q * p) for q, p in zip(frame["quantity"], frame["price"],
                                                          strict=True)])
    per_bar = traded.groupby("time")["v"].sum() if len(traded) else pd.Series(dtype=float)
    turnover = (per_bar / equity.reindex(per_bar.index)).rename("turnover")
    years = len(index) / ppy
    eq = equity.to_numpy().reshape(-1, 1)
    empty = np.empty(0)
    figures = metrics.compute(eq, exposure["gross"].to_numpy().reshape(-1, 1), execution.cash,
                              ppy, empty.astype(np.int64), empty, empty.astype(bool))
    stats: dict[str, Any] = {k: float(figures[k][0]) for k in _FIGURES}
    stats.update({
        "exposure_long": float(long_.mean()), "exposure_short": float(short.mean()),
        "exposure_gross": float(exposure["gross"].mean()),
        "exposure_net": float(exposure["net"].mean()),
        "turnover_per_year": float(turnover.sum() / years) if years > 0 else float("nan"),
        "n_rebalances": n_rebalances, "n_orders": len(frame),
        "fees_paid": float(sum(frame["fees"], ZERO)),
    })
    hold = equal_weight_hold(panel, execution.cash)
    held = metrics.compute(hold.to_numpy().reshape(-1, 1), np.ones((len(hold), 1)),
                           execution.cash, ppy, empty.astype(np.int64), empty,
                           empty.astype(bool))
    stats["benchmark_return"] = float(held["total_return"][0])
    stats["excess_return"] = stats["total_return"] - stats["benchmark_return"]
    per_symbol, exact = _per_symbol(panel, positions, frame, execution, ppy)
    return _Book(stats, w, exposure, turnover, per_symbol, exact, hold)


def equal_weight_hold(panel: Panel, cash: float) -> pd.Series:
    """Equal-weight buy-and-hold of ``panel``'s symbols: ``cash / n`` per symbol, bought
    at its first close (cash until then), held through missing bars at the last close,
    frictionless. The portfolio benchmark (module docstring)."""
    close = panel.close.ffill()
    first = close.bfill().iloc[0]           # each symbol's first close
    growth = (close / first).fillna(1.0)     # before its first bar: the share is cash
    share = cash / max(len(close.columns), 1)
    return (growth * share).sum(axis=1).rename("benchmark")


def engine_summary(strategy: PortfolioStrategy, panel: Panel, execution: Execution,
                   fills: Sequence[Any], equity_curve: Sequence[tuple[Any, Any]], ppy: float,
                   schedule: Any, decisions: int) -> dict[str, Any]:
    """An engine run's figures under :meth:`PortfolioResult.to_dict`'s keys and meanings.

    The same figure functions as a backtest (``stats``, ``per_symbol``, ``last_weights``)
    read the engine's book instead: its equity at each time stamp and its fills (objects
    with ``at``, ``symbol``, ``side``, ``quantity``, ``price``, ``fees``, exact);
    ``final_equity_exact`` books those fills exactly and marks them at the last close,
    as a backtest does.

    Parameters
    ----------
    panel
        The aligned bars the engine replayed.
    equity_curve
        ``(time, equity)`` per time stamp (a stamp the curve lacks holds the last value).
    schedule, decisions
        The rebalance schedule and how many bars it decided on.
    """
    index = panel.index
    times = pd.DatetimeIndex([pd.Timestamp(t) for t, _ in equity_curve])
    equity = pd.Series([float(e) for _, e in equity_curve], index=times, dtype=float,
                       name="equity").reindex(index).ffill().fillna(execution.cash)
    frame = pd.DataFrame([{"time": pd.Timestamp(f.at), "symbol": f.symbol, "side": f.side,
                           "quantity": f.quantity, "price": f.price, "fees": f.fees}
                          for f in fills], columns=["time", "symbol", "side", "quantity",
                                                    "price", "fees"])
    signed = [float(q) if side == "buy" else -float(q)
              for q, side in zip(frame["quantity"], frame["side"], strict=True)]
    moves = (frame.assign(u=signed).pivot_table(index="time", columns="symbol", values="u",
                                                aggfunc="sum")
             if len(frame) else pd.DataFrame())
    positions = (moves.reindex(index=index, columns=panel.close.columns).fillna(0.0).cumsum())
    book = _book(panel, execution, equity, positions, frame, decisions, ppy)
    last = book.weights.iloc[-1]
    return metrics.json_safe({
        "strategy": strategy.name, "params": strategy.params, "symbols": list(panel.symbols),
        "schedule": str(schedule), "execution": asdict(execution), "periods_per_year": ppy,
        "stats": book.stats, "per_symbol": book.per_symbol.reset_index().to_dict("records"),
        "final_equity_exact": str(book.exact),
        "last_weights": {str(s): float(v) for s, v in last.items() if v != 0},
    })


def _per_symbol(panel: Panel, positions: pd.DataFrame, orders: pd.DataFrame,
                execution: Execution, ppy: float) -> tuple[pd.DataFrame, Decimal]:
    """Per-symbol figures and the exact final equity (initial cash plus every symbol's
    P&L, in Decimal)."""
    rows = {}
    exact = to_decimal(execution.cash)
    last = panel.close.ffill().iloc[-1]
    for s in panel.symbols:
        mine = orders[orders["symbol"] == s]
        paid = sum((q * p * (1 if side == "buy" else -1) + f for q, p, side, f in
                    zip(mine["quantity"], mine["price"], mine["side"], mine["fees"],
                        strict=True)), ZERO)
        held = sum((q if side == "buy" else -q for q, side in
                    zip(mine["quantity"], mine["side"], strict=True)), ZERO)
        mark = held * to_decimal(float(last[s])) if held != 0 else ZERO
        exact += mark - paid
        listed = panel.close[s].dropna().to_numpy()
        hold = metrics.buy_and_hold(listed, execution.cash, ppy) if len(listed) > 1 else {}
        rows[s] = {"pnl": float(mark - paid), "contribution": float(mark - paid) / execution.cash,
                   "orders": len(mine), "final_units": float(held),
                   **{f"hold_{k}": v for k, v in hold.items() if k != "final_equity"}}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "symbol"
    final_value = positions.iloc[-1] * last
    table.insert(4, "final_weight", (final_value / float(exact)).reindex(table.index).to_numpy())
    return table, exact
