"""A resumed run keeps its open position's stops: the trailing reference and the bars held
are rebuilt from the entry fill and the bars since, so the fills equal an uninterrupted run."""

from __future__ import annotations

import pytest

from tradelab.app import assemble_engine
from tradelab.engine import EngineConfig, ReplayFeed
from tradelab.execution import Execution
from tradelab.store import Store
from tradelab.strategy.exits import Stops
from tradelab.testing import make_bars

EX = Execution(fees=0.001, slippage=0.0005)


def _mid_position_cuts(bars, fills) -> list[int]:
    """Two bar counts to stop at while a position is open, a few bars into it."""
    at = {t: i for i, t in enumerate(bars.index)}
    held, cuts = 0, []
    for f, nxt in zip(fills, [*fills[1:], None], strict=True):
        held += f.quantity if f.side == "buy" else -f.quantity
        if held and nxt is not None and at[nxt.at] - at[f.at] > 4 and at[f.at] > 100:
            cuts.append(at[f.at] + 3)
    assert len(cuts) >= 2
    return [cuts[0], cuts[len(cuts) // 2]]


def _fills(result) -> list:
    return [(f.at, f.side, f.quantity, f.price) for f in result.fills]


@pytest.mark.parametrize("stops", [Stops(trail=0.03), Stops(sl=0.02, tp=0.04, time_bars=7)],
                         ids=["trail", "sl-tp-time"])
def test_a_resume_mid_position_fills_like_one_run(registry, store: Store, stops) -> None:
    bars = make_bars(400, seed=7)
    strat = registry.create("sma_cross", fast=3, slow=12)
    config = {"direction": "both", "stops": stops}
    whole = assemble_engine([(strat, "X")], ReplayFeed(bars, "X"), EX,
                            config=EngineConfig(**config)).run()
    assert len(whole.fills) > 30
    cuts = _mid_position_cuts(bars, whole.fills)
    start = None
    for cut in [*cuts, len(bars)]:
        engine = assemble_engine([(strat, "X")], ReplayFeed(bars.iloc[:cut], "X"), EX, store=store,
                                 config=EngineConfig(account="acct", **config), resume=start)
        kept: list[bool] = []

        def first_bar(_bar, engine=engine, kept=kept) -> None:
            if not kept:  # the position open at the cut kept its stops across the restart
                kept.append(bool(engine.sides.states) or engine.portfolio.position("X") == 0)

        result = engine.run(on_bar=first_bar)
        assert kept == [True]
        start = int(engine.run_id)
    assert _fills(result) == _fills(whole)
    assert result.equity == whole.equity
