"""Parity: the research backtest and the engine replay on the same bars must agree.

Compared: every trade's time, side, quantity and price (quantities exactly
for whole units, to 1e-9 relative for fractional ones and prices to 1e-12
relative, because the engine books amounts at 10 decimal places, see
:mod:`tradelab.money`), its fees (to 1e-9 relative, or 1e-9 absolute for the
booking's rounding of tiny fees; a cover's borrow fee included), and the final
equity to 1e-9 relative. This module
imports vectorbt (through research); the engine itself never does.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from decimal import Decimal

import pandas as pd

from tradelab.engine.loop import EngineConfig
from tradelab.execution import Execution
from tradelab.feeds.replay import ReplayFeed
from tradelab.strategy.base import Strategy
from tradelab.strategy.exits import Stops

REL_TOL = 1e-9


@dataclass
class ParityReport:
    strategy: str
    params: dict
    execution: Execution
    research_equity: float
    engine_equity: float
    research_fills: int
    engine_fills: int
    research_round_trips: int = 0
    engine_round_trips: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict:
        """JSON-able: round trips and fills of each side, equities and every difference."""
        return {"strategy": self.strategy, "params": self.params, "execution": asdict(self.execution),
                "ok": self.ok,
                "round_trips": {"research": self.research_round_trips,
                                "engine": self.engine_round_trips},
                "fills": {"research": self.research_fills, "engine": self.engine_fills},
                "equity": {"research": self.research_equity, "engine": self.engine_equity},
                "differences": list(self.differences)}

    def __str__(self) -> str:
        head = (f"parity {self.strategy} {self.params} fill={self.execution.fill} "
                f"fractional={self.execution.fractional}: research {self.research_round_trips} "
                f"round trips, {self.research_fills} fills, equity {self.research_equity:,.6f}; "
                f"engine {self.engine_round_trips} round trips, {self.engine_fills} fills, "
                f"equity {self.engine_equity:,.6f}")
        if self.ok:
            return head + ": OK"
        shown = "\n  ".join(self.differences[:10])
        more = f"\n  ... {len(self.differences) - 10} more" if len(self.differences) > 10 else ""
        return f"{head}: DIVERGED\n  {shown}{more}"


def _close(a: float, b: float, rel: float) -> bool:
    return a == b or math.isclose(a, b, rel_tol=rel, abs_tol=0.0)


def compare(strategy: Strategy, bars: pd.DataFrame, execution: Execution, symbol: str = "SPX",
            signal_mode: str = "window", direction: str | None = None,
            stops: Stops | None = None) -> ParityReport:
    """Run both engines on ``bars`` and list every difference.

    ``direction``/``stops``: what both trade (default: the strategy's own); ``stops``
    replaces the strategy's declared exits (e.g. ``TradeOptions.resolve``'s result).
    """
    from tradelab.app.wiring import assemble_engine
    from tradelab.research.backtest import backtest

    trade: dict = {}
    if direction is not None:
        trade["direction"] = direction
    if stops is not None:
        trade.update(sl=stops.sl, tp=stops.tp, trail=stops.trail, time_stop=stops.time_bars)
    research = backtest(strategy, bars, execution=execution, **trade)
    engine = assemble_engine([(strategy, symbol)], ReplayFeed(bars, symbol), execution,
                             config=EngineConfig(signal_mode=signal_mode, direction=direction,
                                                 stops=stops))
    result = engine.run()
    r = research.orders.reset_index(drop=True)
    e = result.fills
    diffs: list[str] = []
    if len(r) != len(e):
        diffs.append(f"fill count: research {len(r)}, engine {len(e)}")
    qty_tol = REL_TOL if execution.fractional else 0.0
    for i, (row, fill) in enumerate(zip(r.itertuples(index=False), e, strict=False)):
        problems = []
        if pd.Timestamp(row.time) != pd.Timestamp(fill.at):
            problems.append(f"time {row.time} vs {fill.at}")
        if row.side != fill.side:
            problems.append(f"side {row.side} vs {fill.side}")
        if not _close(float(row.quantity), float(fill.quantity), qty_tol):
            problems.append(f"quantity {row.quantity!r} vs {fill.quantity}")
        if not _close(float(row.price), float(fill.price), 1e-12):
            problems.append(f"price {row.price!r} vs {fill.price}")
        if not math.isclose(float(row.fees), float(fill.fees), rel_tol=REL_TOL, abs_tol=1e-9):
            problems.append(f"fees {row.fees!r} vs {fill.fees}")
        if problems:
            diffs.append(f"fill {i}: " + ", ".join(problems))
    re_eq, en_eq = float(research.final_equity), float(result.equity)
    if not _close(re_eq, en_eq, REL_TOL):
        diffs.append(f"final equity: research {re_eq!r}, engine {en_eq!r} "
                     f"(relative difference {abs(re_eq - en_eq) / abs(re_eq):.3e})")
    return ParityReport(strategy.name, strategy.params, execution, re_eq, en_eq, len(r), len(e),
                        int(research.stats["n_trades"]), _entries(e), diffs)


def _entries(fills: list) -> int:
    """Round trips entered: fills that open a position from flat or reverse one, as
    research counts trades."""
    held, count = Decimal(0), 0
    for f in fills:  # exact: a float sum leaves dust after a fractional reversal
        after = held + f.quantity if f.side == "buy" else held - f.quantity
        count += after != 0 and (held == 0 or (held > 0) != (after > 0))
        held = after
    return count
