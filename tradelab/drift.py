"""Live-vs-research drift: a run's fills against the research backtest over the bars it received.

:func:`attribute` compares the two fill lists trade by trade and splits the
equity gap (run minus research, both marked at the last bar's close) into
causes, in money:

* **price**: the same trade on the same bar at another price (slippage, a
  venue's fill price): ``side * run_qty * (run_price - research_price)``, with
  ``side`` +1 for a sell and -1 for a buy, so a worse price is a loss.
* **fees**: ``research_fees - run_fees`` of such a trade.
* **quantity** (partial or missed fills): the quantity difference of a trade on
  the same bar, valued from the research price to the last close
  (``side * (run_qty - research_qty) * (research_price - last_close)``; over a
  round trip this is the difference times exit minus entry price), and a trade
  only one side has when the run had an order for it that did not fill
  completely (or the trade completes such a round trip).
* **timing**: a trade on a different bar (paired with the other side's nearest
  unmatched trade of the same side within ``max_lag`` bars), or a trade one
  side has and the other never decided on: its whole contribution.

Trades are the fills aggregated per (bar, side): several partial fills of one
bar count as one trade at their average price. The causes add up to the gap up
to the engine's 10-decimal booking (``other``). Data differences (the run's
bars against the source's bars for the same times) are reported beside the
gap, with their effect in money: research over the run's bars minus research
over the source's bars.

:func:`drift_report` runs the research side; :mod:`tradelab.drift_run` loads a
stored run and alerts. This module imports vectorbt (through research) when a
report is built; the engine never imports it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pandas as pd

from tradelab.execution import Execution
from tradelab.strategy.base import Strategy

CAUSES = ("price", "fees", "quantity", "timing")
REL_TOL = 1e-9  # prices and quantities this close are equal (the engine books 10 decimals)
BAR_FIELDS = ("open", "high", "low", "close", "volume")
_FILL_FIELDS = ("at", "side", "quantity", "price", "fees", "client_order_id")


@dataclass(frozen=True)
class Trade:
    """Fills of one side on one bar, aggregated (price = quantity-weighted average)."""

    at: pd.Timestamp
    side: str
    quantity: float
    price: float
    fees: float
    orders: tuple[str, ...] = ()

    @property
    def sign(self) -> int:
        """+1 for a sell (cash in), -1 for a buy."""
        return 1 if self.side == "sell" else -1

    def value(self, last_close: float) -> float:
        """Cash flow of the trade plus its position marked at ``last_close``."""
        return self.sign * self.quantity * (self.price - last_close) - self.fees


@dataclass(frozen=True)
class DriftRow:
    """One trade compared: ``kind`` is match, timing, missed, partial or signal."""

    kind: str
    side: str
    run: Trade | None
    research: Trade | None
    price: float = 0.0
    fees: float = 0.0
    quantity: float = 0.0
    timing: float = 0.0
    #: The row's symbol in a portfolio run's report ("" for a one-symbol run).
    symbol: str = ""

    @property
    def total(self) -> float:
        """The row's part of the equity gap (run minus research)."""
        return self.price + self.fees + self.quantity + self.timing

    @property
    def cause(self) -> str:
        """The largest cause by absolute amount ("none" when the trades agree)."""
        amounts = {c: abs(getattr(self, c)) for c in CAUSES}
        best = max(amounts, key=lambda c: amounts[c])
        return best if amounts[best] > 0 else "none"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able row: both trades' fields, the money per cause, the main cause."""
        out: dict[str, Any] = {"kind": self.kind, "side": self.side, "cause": self.cause}
        if self.symbol:
            out["symbol"] = self.symbol
        for name, t in (("run", self.run), ("research", self.research)):
            out[f"{name}_at"] = None if t is None else t.at.isoformat()
            out[f"{name}_quantity"] = None if t is None else t.quantity
            out[f"{name}_price"] = None if t is None else t.price
            out[f"{name}_fees"] = None if t is None else t.fees
        out.update({c: getattr(self, c) for c in CAUSES})
        out["total"] = self.total
        return out


@dataclass(frozen=True)
class DataDiff:
    """The run's bars against the source's bars for the same times.

    ``compared`` times exist on both sides, ``differing`` of them differ in some
    field by more than 1e-9 relative, ``missing`` run times the source lacks;
    ``effect`` is research equity over the run's bars minus over the source's
    (``None`` when the source does not cover every run bar).
    """

    source: str
    compared: int
    differing: int
    max_abs_diff: float
    missing: int
    effect: float | None
    examples: tuple[str, ...] = ()
    error: str | None = None


@dataclass
class DriftReport:
    """A run against research over the bars it received; see the module docstring."""

    run_id: int | None
    strategy: str
    params: dict[str, Any]
    symbol: str
    execution: Execution
    bars: int
    initial_cash: float
    run_equity: float
    research_equity: float
    last_close: float
    rows: list[DriftRow] = field(default_factory=list)
    data: DataDiff | None = None
    threshold: float | None = None

    @property
    def gap(self) -> float:
        """Run equity minus research equity over the same bars."""
        return self.run_equity - self.research_equity

    @property
    def by_cause(self) -> dict[str, float]:
        """Money per cause; ``other`` is what the rows do not explain (booking rounding)."""
        out = {c: math.fsum(getattr(r, c) for r in self.rows) for c in CAUSES}
        out["other"] = self.gap - math.fsum(out.values())
        return out

    @property
    def drift(self) -> float:
        """The larger of the gap and the gap against research on the source's bars, over the
        starting equity."""
        gaps = [abs(self.gap)]
        if self.data is not None and self.data.effect is not None:
            gaps.append(abs(self.gap + self.data.effect))
        return max(gaps) / self.initial_cash

    @property
    def exceeded(self) -> bool:
        """Whether :attr:`drift` is above the threshold (never when there is none)."""
        return self.threshold is not None and self.drift > self.threshold

    @property
    def differences(self) -> list[DriftRow]:
        """Rows that are not an exact match."""
        return [r for r in self.rows if r.kind != "match" or r.cause != "none"]

    def frame(self) -> pd.DataFrame:
        """One row per compared trade (see :meth:`DriftRow.to_dict`)."""
        return pd.DataFrame([r.to_dict() for r in self.rows])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able report: equities, gap, money per cause, data differences, rows."""
        kinds: dict[str, int] = {}
        for r in self.rows:
            kinds[r.kind] = kinds.get(r.kind, 0) + 1
        return {"run_id": self.run_id, "strategy": self.strategy, "params": self.params,
                "symbol": self.symbol, "execution": asdict(self.execution), "bars": self.bars,
                "initial_cash": self.initial_cash,
                "equity": {"run": self.run_equity, "research": self.research_equity},
                "gap": self.gap, "by_cause": self.by_cause, "drift": self.drift,
                "threshold": self.threshold, "exceeded": self.exceeded,
                "trades": {"run": sum(r.run is not None for r in self.rows),
                           "research": sum(r.research is not None for r in self.rows),
                           "kinds": kinds, "differing": len(self.differences)},
                "data": None if self.data is None else asdict(self.data),
                "rows": [r.to_dict() for r in self.rows]}

    def __str__(self) -> str:
        head = (f"drift of run {self.run_id} ({self.strategy} {self.params} on {self.symbol}, "
                f"{self.bars} bars): run equity {self.run_equity:,.2f}, "
                f"research {self.research_equity:,.2f}, "
                f"gap {self.gap:+,.2f} ({self.drift:.4%} of {self.initial_cash:,.2f})")
        lines = [head, "  by cause: " + ", ".join(f"{k} {v:+,.2f}" for k, v in self.by_cause.items())]
        diffs = self.differences
        lines.append(f"  trades: {sum(r.run is not None for r in self.rows)} run, "
                     f"{sum(r.research is not None for r in self.rows)} research, {len(diffs)} differ")
        for r in diffs[:10]:
            t = r.run or r.research
            assert t is not None
            lines.append(f"    {t.at:%Y-%m-%d %H:%M} {r.symbol + ' ' if r.symbol else ''}"
                         f"{r.side:4} {r.kind:8} {r.cause:8} {r.total:+,.2f}"
                         f"  run {_trade_text(r.run)} | research {_trade_text(r.research)}")
        if len(diffs) > 10:
            lines.append(f"    ... {len(diffs) - 10} more")
        d = self.data
        if d is not None:
            if d.error:
                lines.append(f"  data: not compared with {d.source} ({d.error})")
            else:
                effect = "n/a" if d.effect is None else f"{d.effect:+,.2f}"
                lines.append(f"  data: {d.differing} of {d.compared} bars differ from {d.source} "
                             f"(max abs diff {d.max_abs_diff:g}), {d.missing} missing there; "
                             f"effect on research equity {effect}")
        if self.threshold is not None:
            lines.append(f"  threshold {self.threshold:.4%}: "
                         + ("EXCEEDED" if self.exceeded else "within"))
        return "\n".join(lines)


def _trade_text(t: Trade | None) -> str:
    if t is None:
        return "-"
    return f"{t.at:%Y-%m-%d} {t.quantity:g} @ {t.price:.4f} fees {t.fees:.2f}"


def _close(a: float, b: float) -> bool:
    return a == b or math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12)


def trades(fills: Iterable[Any], index: pd.DatetimeIndex | None = None) -> list[Trade]:
    """Fills (records with ``at, side, quantity, price, fees`` and maybe ``client_order_id``)
    aggregated per (bar, side), in time order.

    With ``index`` (the bars' times) a fill is put on the bar it happened in: the last bar
    at or before its time. A paper fill carries its bar's time already; a venue's fill
    carries the venue's clock (e.g. 09:30:00.412 for a bar stamped 09:30).
    """
    groups: dict[tuple[pd.Timestamp, str], list[dict[str, Any]]] = {}
    for f in fills:
        d: dict[str, Any] = f if isinstance(f, dict) else {k: getattr(f, k, None) for k in _FILL_FIELDS}
        at = pd.Timestamp(d.get("at", d.get("time")))
        if index is not None and len(index):
            at = index[max(int(index.searchsorted(at, side="right")) - 1, 0)]
        groups.setdefault((at, str(d["side"])), []).append(d)
    out = []
    # Within a bar, sells first: an exit and a re-entry on one bar happen in that order.
    for (at, side), fs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] == "buy")):
        qty = math.fsum(float(f["quantity"]) for f in fs)
        price = (math.fsum(float(f["quantity"]) * float(f["price"]) for f in fs) / qty
                 if qty else float(fs[0]["price"]))
        cids = tuple(dict.fromkeys(str(f["client_order_id"]) for f in fs if f.get("client_order_id")))
        out.append(Trade(at, side, qty, price, math.fsum(float(f["fees"]) for f in fs), cids))
    return out


def attribute(run: Sequence[Trade], research: Sequence[Trade], last_close: float,
              index: pd.DatetimeIndex, *, unfilled: Sequence[tuple[pd.Timestamp, str]] = (),
              max_lag: int = 3) -> list[DriftRow]:
    """Compare two trade lists and split each difference into causes (money, run minus research).

    Parameters
    ----------
    run, research
        :func:`trades` of each side.
    last_close
        The last bar's close (both sides' open positions are marked there).
    index
        The bars' times (distances between trades are counted in bars).
    unfilled
        ``(decision time, side)`` of the run's orders that did not fill completely:
        a research trade the run lacks is a missed fill when the run decided it.
    max_lag
        Bars within which two unmatched trades of one side are the same trade, late.

    Returns
    -------
    list of DriftRow
        In time order.
    """
    pos = {t: i for i, t in enumerate(index)}
    res_by = {(t.at, t.side): t for t in research}
    run_by = {(t.at, t.side): t for t in run}
    rows: list[DriftRow] = []
    matched_orders: set[str] = set()
    for key in run_by.keys() & res_by.keys():
        r, s = run_by[key], res_by[key]
        sign = r.sign
        price = 0.0 if _close(r.price, s.price) else sign * r.quantity * (r.price - s.price)
        fees = 0.0 if _close(r.fees, s.fees) else s.fees - r.fees
        qty = (0.0 if _close(r.quantity, s.quantity)
               else sign * (r.quantity - s.quantity) * (s.price - last_close))
        rows.append(DriftRow("match", r.side, r, s, price=price, fees=fees, quantity=qty))
        matched_orders.update(r.orders)
    run_left = [t for k, t in run_by.items() if k not in res_by]
    res_left = [t for k, t in res_by.items() if k not in run_by]
    # Late or early: the nearest unmatched trade of the same side on the other side.
    def lag(a: Trade, b: Trade) -> int:
        return abs(pos.get(a.at, 0) - pos.get(b.at, 0))

    for s in sorted(res_left, key=lambda t: t.at):
        near = [r for r in run_left if r.side == s.side and lag(r, s) <= max_lag]
        if not near:
            continue
        r = min(near, key=lambda t: lag(t, s))
        run_left.remove(r)
        res_left.remove(s)
        rows.append(DriftRow("timing", s.side, r, s, timing=r.value(last_close) - s.value(last_close)))
        matched_orders.update(r.orders)
    decided = {(pd.Timestamp(at), side) for at, side in unfilled}
    missed_entry = False
    for s in sorted(res_left, key=lambda t: t.at):
        i = pos.get(s.at, 0)
        around = {(index[j], s.side) for j in (i - 1, i) if 0 <= j < len(index)}
        missed = bool(around & decided) or (s.side == "sell" and missed_entry)
        missed_entry = s.side == "buy" and missed
        amount = -s.value(last_close)
        rows.append(DriftRow("missed", s.side, None, s, quantity=amount) if missed
                    else DriftRow("signal", s.side, None, s, timing=amount))
    for r in run_left:
        amount = r.value(last_close)
        rows.append(DriftRow("partial", r.side, r, None, quantity=amount)
                    if set(r.orders) & matched_orders else DriftRow("signal", r.side, r, None, timing=amount))
    rows.sort(key=lambda row: min(t.at for t in (row.run, row.research) if t is not None))
    return rows


def data_diff(run_bars: pd.DataFrame, source_bars: pd.DataFrame | None, source: str, *,
              effect: float | None = None, error: str | None = None) -> DataDiff:
    """Compare the run's bars with the source's bars at the same times."""
    if source_bars is None:
        return DataDiff(source, 0, 0, 0.0, len(run_bars), None, (), error)
    common = run_bars.index.intersection(source_bars.index)
    a = run_bars.loc[common, list(BAR_FIELDS)].to_numpy(dtype=float)
    b = source_bars.loc[common, list(BAR_FIELDS)].to_numpy(dtype=float)
    diff = abs(a - b)
    tol = 1e-9 * abs(b)
    bad = (diff > tol).any(axis=1) if len(common) else []
    examples = tuple(f"{t:%Y-%m-%d %H:%M}" for t in common[bad][:5]) if len(common) else ()
    return DataDiff(source, len(common), int(sum(bad)), float(diff.max()) if diff.size else 0.0,
                    len(run_bars.index.difference(source_bars.index)), effect, examples, error)


def drift_report(strategy: Strategy, bars: pd.DataFrame, fills: Iterable[Any], execution: Execution, *,
                 run_equity: float, initial_cash: float, symbol: str = "", run_id: int | None = None,
                 unfilled: Sequence[tuple[Any, str]] = (), source_bars: pd.DataFrame | None = None,
                 source: str = "", source_error: str | None = None,
                 threshold: float | None = None, trade: dict[str, Any] | None = None) -> DriftReport:
    """Research over ``bars`` (the run's) against the run's ``fills``; see :func:`attribute`.

    Parameters
    ----------
    strategy
        The run's strategy with its parameters.
    bars
        The bars the run received (contract columns, increasing UTC index).
    fills
        The run's fills (``FillRecord`` or alike).
    execution
        The research convention; its cash is replaced by ``initial_cash``.
    run_equity, initial_cash
        The run's last and starting equity.
    unfilled
        ``(decision time, side)`` of run orders that did not fill completely.
    source_bars
        The source's bars over the same period, for the data comparison.
    threshold
        Drift (fraction of ``initial_cash``) above which the report is ``exceeded``.
    trade
        ``direction=, sl=, tp=, trail=, time_stop=`` of the backtest (``None`` values:
        the strategy's own).
    """
    from tradelab.research.backtest import backtest

    ex = replace(execution, cash=float(initial_cash))
    given = {k: v for k, v in (trade or {}).items() if v is not None}
    research = backtest(strategy, bars, execution=ex, **given)
    last_close = float(bars["close"].iloc[-1])
    index = pd.DatetimeIndex(bars.index)
    rows = attribute(trades(fills, index), trades(research.orders.to_dict("records")), last_close,
                     index, unfilled=unfilled)
    data = None
    if source_bars is not None or source_error is not None:
        effect = None
        if source_bars is not None and bars.index.isin(source_bars.index).all():
            other = source_bars.loc[bars.index, list(BAR_FIELDS)]
            on_source = backtest(strategy, other, execution=ex, **given)
            effect = float(research.final_equity) - float(on_source.final_equity)
        data = data_diff(bars, source_bars, source, effect=effect, error=source_error)
    return DriftReport(run_id, strategy.name, dict(strategy.params), symbol, ex, len(bars),
                       float(initial_cash), float(run_equity), float(research.final_equity), last_close,
                       rows, data, threshold)


__all__ = ["CAUSES", "DataDiff", "DriftReport", "DriftRow", "Trade", "attribute", "data_diff",
           "drift_report", "trades"]
