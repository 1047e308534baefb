"""Research vs engine for a portfolio strategy: the same fills and the same equity.

:func:`compare_portfolio` lines up :func:`tradelab.backtest_portfolio`'s orders with an
engine run's fills. A fill matches when time, symbol, side and quantity are equal and
the price equals research's price **booked** (the store and the paper broker keep
:data:`~tradelab.money.SCALE` decimal places; research keeps the exact product), and
the fees agree to 1e-9 (relative, or absolute for tiny fees; a cover's borrow fee
included). The
equity curves must agree to ``rtol`` (1e-9) at every time stamp: the engine books fees
from the convention's float formula at 10 places where research books them exactly,
a difference of the order of 1e-10 per fill.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from tradelab.money import book


@dataclass
class PortfolioParity:
    """Outcome of :func:`compare_portfolio`."""

    fills_research: int
    fills_engine: int
    fill_mismatches: list[dict[str, Any]] = field(default_factory=list)
    max_equity_rel_diff: float = 0.0
    bars_compared: int = 0
    rtol: float = 1e-9

    @property
    def ok(self) -> bool:
        """Identical fills and equity within ``rtol`` at every time stamp."""
        return (not self.fill_mismatches and self.fills_research == self.fills_engine
                and self.max_equity_rel_diff <= self.rtol)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "fills_research": self.fills_research,
                "fills_engine": self.fills_engine,
                "fill_mismatches": self.fill_mismatches[:20],
                "max_equity_rel_diff": self.max_equity_rel_diff,
                "bars_compared": self.bars_compared, "rtol": self.rtol}


def _key(time: Any, symbol: str, side: str, quantity: Any, price: Any) -> tuple:
    return (pd.Timestamp(time), str(symbol), str(side), book(quantity), book(price))


def _fees_agree(a: Any, b: Any) -> bool:
    """Fees to 1e-9 relative, or 1e-9 absolute (the booking's rounding of tiny fees), as
    :mod:`tradelab.parity` compares them; a cover's borrow fee is part of them."""
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def compare_portfolio(research: Any, fills: list[Any], curve: list[tuple[Any, float]],
                      rtol: float = 1e-9) -> PortfolioParity:
    """Compare a :class:`~tradelab.research.portfolio_result.PortfolioResult` with an
    engine's ``fills`` (``Fill`` objects) and equity ``curve`` (``(time, equity)``)."""
    # Within one time stamp the order of the fills is not compared (research lists them
    # as its order table does, the engine as the broker works the symbols): sorted.
    ours = sorted((*_key(r.time, r.symbol, r.side, r.quantity, r.price), r.fees)
                  for r in research.orders.itertuples())
    theirs = sorted((*_key(f.at, f.symbol, f.side, f.quantity, f.price), f.fees) for f in fills)
    out = PortfolioParity(len(ours), len(theirs), rtol=rtol)
    for i, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        if a[:-1] != b[:-1] or not _fees_agree(a[-1], b[-1]):
            out.fill_mismatches.append({"index": i, "research": [str(x) for x in a],
                                        "engine": [str(x) for x in b]})
    eq = pd.Series({pd.Timestamp(t): v for t, v in curve}, dtype=float)
    ref = research.equity
    common = ref.index.intersection(eq.index)
    if len(common) != len(ref) or len(common) != len(eq):
        out.fill_mismatches.append({"index": -1, "research": f"{len(ref)} equity points",
                                    "engine": f"{len(eq)} equity points"})
    rel = ((eq[common] - ref[common]).abs() / ref[common].abs()).max() if len(common) else 0.0
    out.max_equity_rel_diff, out.bars_compared = float(rel), len(common)
    return out


__all__ = ["PortfolioParity", "compare_portfolio"]
