"""The dashboard's "Close" on a portfolio run: :class:`PortfolioEngine` acts on close
requests like the single-symbol engine (one FLATTEN order for the symbol), and the next
scheduled rebalance may establish the position again (see :mod:`tradelab.engine.closer`)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from tradelab.data.universe import Panel, load_universe
from tradelab.execution import Execution
from tradelab.orders.model import client_order_id
from tradelab.risk.manager import FLATTEN
from tradelab.store.close_repo import close_requests, request_close
from tradelab.strategy.portfolio import PortfolioStrategy

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 1, tzinfo=UTC)


class HalfHalf(PortfolioStrategy):
    """Half in KO, half in PEP (less a margin for fees), rebalanced monthly."""

    name = "half_half"
    universe = ("KO", "PEP")
    rebalance = "M"

    def weights(self, panel: Panel) -> pd.DataFrame:
        return pd.DataFrame({"KO": 0.45, "PEP": 0.45}, index=panel.index)


@pytest.fixture()
def tl(tmp_path: Path):
    from tradelab.app import build
    from tradelab.config import load_config

    env = {"TRADELAB_HOME": str(ROOT), "TRADELAB__CACHE__DIR": str(tmp_path / "cache"),
           "PATH": os.environ.get("PATH", ""),
           "TRADELAB__STORE__URL": f"sqlite:///{tmp_path / 'close.db'}"}
    return build(load_config(environ=env, home=ROOT))


@pytest.mark.parametrize("fill", ["next_open", "close"])
@pytest.mark.parametrize("ask_at", [30, 38])
def test_a_close_request_flattens_one_symbol_until_the_next_rebalance(tl, fill: str,
                                                                      ask_at: int) -> None:
    """Asked after time stamp ``ask_at`` (mid-February, or the eve of March's rebalance
    decision: then the decision must not trade the symbol being closed)."""
    bars = load_universe(("KO", "PEP"), "sample", "2010-01-01", "2010-04-30")
    times = bars["KO"].index
    decisions = [0, 19, 38, 61]  # the first bar of each month ("M")
    assert (times[decisions].month == [1, 2, 3, 4]).all()
    assert (times[[d - 1 for d in decisions[1:]]].month == [1, 2, 3]).all()
    engine = tl.portfolio_engine(HalfHalf(), bars=bars, account=f"close-{fill}-{ask_at}",
                                 execution=Execution(cash=100_000.0, fees=0.0, fill=fill),
                                 kill_poll_seconds=0.0)
    asked: list[int] = []
    held: dict[int, tuple] = {}  # after n time stamps: (KO, PEP) units

    def watch(batch: object) -> None:
        n = len(engine.curve)
        held[n] = (engine.portfolio.position("KO"), engine.portfolio.position("PEP"))
        if n == ask_at:
            assert held[n][0] > 0 and held[n][1] > 0
            asked.append(request_close(engine.store, engine.account, int(engine.run_id), "KO",
                                       "trader", NOW))

    result = engine.run(on_bar=watch)
    [req] = close_requests(engine.store, engine.account, int(engine.run_id))
    # acted on at the next poll (the time stamp after the request), at its close
    expected = client_order_id(str(engine.run_id), FLATTEN, "KO",
                               times[ask_at].to_pydatetime(), "sell")
    assert (req.id, req.status, req.client_order_id) == (asked[0], "done", expected)
    flat = [f for f in result.fills if f.client_order_id == expected]
    assert len(flat) == 1 and flat[0].symbol == "KO" and flat[0].side == "sell"
    assert engine.orders.orders[expected].strategy == FLATTEN
    # flat from the next time stamp's open up to the next rebalance; PEP kept meanwhile
    after = next(d for d in decisions if d > ask_at)
    for n in range(ask_at + 2, after + 1):
        assert held[n][0] == 0, n
        assert held[n][1] == held[ask_at + 2][1] > 0, n
    # the strategy still targets KO: the next scheduled rebalance buys it back
    assert held[len(times)][0] > 0
    assert any(f.symbol == "KO" and f.side == "buy" and pd.Timestamp(f.at) >= times[after]
               for f in result.fills)
