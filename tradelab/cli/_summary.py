"""An engine run described with the research vocabulary: the same stats and trades table.

``tradelab paper --json`` prints the keys ``tradelab backtest --json`` prints (plus the
run id): :mod:`tradelab.research.metrics` computes the stats from the run's equity
curve and fills, and the fills are paired into round trips like vectorbt's trades
(a trade opens when the position leaves flat and closes when it is flat again; a
reversal closes one and opens the other). Numpy only; vectorbt is not imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from tradelab.execution import Execution


def round_trips(fills: list[Any], last_price: float | None,
                reasons: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The fills paired into round trips (columns of ``BacktestResult.trades``).

    A trade opens when the position leaves flat and closes when it is flat again; a
    fill through zero (a reversal) closes one trade and opens the other side with the
    rest, its fees split by quantity (as vectorbt splits them). ``exit_reason``: the
    declared exit whose order closed it (``reasons``: client order id → "sl", "tp",
    "trail", "time"), else "signal"; None while open.
    """
    trades: list[dict[str, Any]] = []
    held = 0.0
    current: dict[str, Any] | None = None
    for f in fills:
        qty, price, fee = float(f.quantity), float(f.price), float(f.fees)
        sign = 1 if f.side == "buy" else -1
        rest, fee_rest = qty, fee
        if current is not None and sign != current["sign"]:
            closing = min(qty, abs(held))
            share = fee * closing / qty if qty else fee
            current["sold"] += closing
            current["proceeds"] += closing * price
            current["fees"] += share
            held += sign * closing
            rest, fee_rest = qty - closing, fee - share
            if abs(held) <= 1e-12:
                current["reason"] = reasons.get(f.client_order_id, "signal") if reasons \
                    else "signal"
                trades.append(_trade(current, f.at, "closed"))
                current, held = None, 0.0
        if rest > 1e-12:
            if current is None:
                current = {"entry_time": f.at, "sign": sign, "quantity": 0.0, "cost": 0.0,
                           "fees": 0.0, "proceeds": 0.0, "sold": 0.0}
            current["quantity"] += rest
            current["cost"] += rest * price
            current["fees"] += fee_rest
            held += sign * rest
    if current is not None:
        mark = last_price if last_price is not None else current["cost"] / current["quantity"]
        current["proceeds"] += abs(held) * mark
        trades.append(_trade(current, None, "open"))
    return trades


def _trade(t: dict[str, Any], exit_time: Any, status: str) -> dict[str, Any]:
    qty = t["quantity"]
    entry = t["cost"] / qty
    pnl = t["sign"] * (t["proceeds"] - t["cost"]) - t["fees"]
    return {"entry_time": t["entry_time"], "exit_time": exit_time,
            "side": "long" if t["sign"] > 0 else "short", "quantity": qty,
            "entry_price": entry,
            "exit_price": t["proceeds"] / t["sold"] if status == "closed" else None,
            "fees": t["fees"], "pnl": pnl, "return": pnl / (qty * entry), "status": status,
            "exit_reason": t.get("reason") if status == "closed" else None}


def engine_stats(result: Any, execution: Execution, periods_per_year: float | None,
                 last_price: float | None, closes: pd.Series | None = None,
                 reasons: Mapping[str, str] | None = None
                 ) -> tuple[dict[str, Any], list[dict[str, Any]], float | None]:
    """``(stats, trades, periods_per_year)`` of a finished engine run, as a backtest has them.

    ``stats`` holds ``n_trades`` like a backtest's (callers name it ``round_trips``);
    with the run's ``closes`` also the buy-and-hold ``benchmark_return`` and ``excess_return``.
    """
    from tradelab.research import metrics
    from tradelab.research.conventions import periods_per_year as infer

    trades = round_trips(result.fills, last_price, reasons)
    curve = result.equity_curve
    if not curve:
        return {"n_trades": len(trades), "final_equity": float(result.equity),
                "bars": result.bars}, trades, periods_per_year
    index = pd.DatetimeIndex([at for at, _ in curve])
    value = np.array([v for _, v in curve], dtype=float)
    signed = pd.Series([float(f.quantity) * (1 if f.side == "buy" else -1) for f in result.fills],
                       index=pd.DatetimeIndex([f.at for f in result.fills]), dtype=float)
    held = signed.groupby(level=0).sum().cumsum() if len(signed) else signed
    position = held.reindex(index.union(held.index)).ffill().reindex(index).fillna(0.0).to_numpy()
    ppy = infer(index, periods_per_year) if len(index) > 1 else periods_per_year or 252.0
    per_col = metrics.compute(
        value[:, None], position[:, None], execution.cash, ppy,
        np.zeros(len(trades), dtype=np.int64), np.array([t["pnl"] for t in trades], dtype=float),
        np.array([t["status"] == "open" for t in trades], dtype=bool))
    stats: dict[str, Any] = {k: v[0].item() for k, v in per_col.items()}
    stats.update(start=index[0], end=index[-1], bars=len(index))
    if closes is not None:
        held_close = closes.reindex(index).ffill().bfill().to_numpy(dtype=float)
        bench = metrics.buy_and_hold(held_close, execution.cash, ppy)
        stats.update(benchmark_return=bench["total_return"],
                     excess_return=stats["total_return"] - bench["total_return"])
    return stats, trades, ppy


def execution_dict(execution: Execution) -> dict[str, Any]:
    return asdict(execution)
