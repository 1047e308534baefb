"""A run resumed while short charges the cover the borrow fee an uninterrupted run does:
the paper broker rebuilds the short's accrual from the run's fills and bars."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradelab.app import assemble_engine
from tradelab.engine import EngineConfig, ReplayFeed
from tradelab.execution import Execution
from tradelab.store import Store
from tradelab.testing import make_bars

EX = Execution(size=10, size_type="amount", fees=0.001, borrow_fee=0.2)


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'borrow.db'}")
    s.upgrade()
    return s


def _short_cuts(bars, fills) -> list[int]:
    """Bar counts to stop at while short, a few bars into two different shorts."""
    at = {t: i for i, t in enumerate(bars.index)}
    held, cuts = 0, []
    for f, nxt in zip(fills, [*fills[1:], None], strict=True):
        held += f.quantity if f.side == "buy" else -f.quantity
        if held < 0 and nxt is not None and at[nxt.at] - at[f.at] > 4:
            cuts.append(at[f.at] + 3)
    assert len(cuts) >= 2
    return [cuts[0], cuts[len(cuts) // 2]]


def _charged(engine, fills) -> list[tuple]:
    """Each fill with the borrow fee it carried: its fees less the ordinary order fee."""
    ex = engine.execution
    return [(f, float(f.fees) - ex.order_fees(float(f.quantity), float(f.price))) for f in fills]


def test_a_resume_mid_short_charges_the_same_borrow_fee(registry, store: Store) -> None:
    bars = make_bars(300, seed=3)
    strat = registry.create("sma_cross", fast=3, slow=12)
    config = {"direction": "short"}
    uninterrupted = assemble_engine([(strat, "X")], ReplayFeed(bars, "X"), EX,
                                    config=EngineConfig(**config))
    whole = uninterrupted.run()
    plain = assemble_engine([(strat, "X")], ReplayFeed(bars, "X"), Execution(
        size=10, size_type="amount", fees=0.001), config=EngineConfig(**config)).run()
    # the covers carry a borrow fee (else this test could not tell a lost accrual)
    assert sum(f.fees for f in whole.fills) > sum(f.fees for f in plain.fills)
    start = None
    for cut in [*_short_cuts(bars, whole.fills), len(bars)]:
        engine = assemble_engine([(strat, "X")], ReplayFeed(bars.iloc[:cut], "X"), EX, store=store,
                                 config=EngineConfig(account="acct", **config), resume=start)
        result = engine.run()
        start = int(engine.run_id)
        # what the covers were charged, earlier processes included, is rebuilt too
        assert engine.broker.borrow_paid == pytest.approx(sum(
            b for f, b in _charged(uninterrupted, whole.fills) if f.at <= bars.index[cut - 1]),
            rel=1e-9, abs=1e-8)
    assert [(f.at, f.side, f.quantity, f.price, f.fees) for f in result.fills] == \
        [(f.at, f.side, f.quantity, f.price, f.fees) for f in whole.fills]
    assert result.equity == whole.equity
