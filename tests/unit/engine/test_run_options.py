"""A run stores its direction and stops; a resume trades with them and refuses others."""

from __future__ import annotations

import pytest

from tradelab.app import assemble_engine
from tradelab.app.recovery import RecoveryError
from tradelab.engine import EngineConfig, ReplayFeed
from tradelab.execution import Execution
from tradelab.store import Store
from tradelab.strategy.exits import Stops
from tradelab.testing import make_bars

EX = Execution(fees=0.001)


def test_a_resume_trades_with_the_stored_options_and_refuses_others(registry, store: Store) -> None:
    bars = make_bars(200, seed=3)
    strat = registry.create("sma_cross", fast=3, slow=12)
    first = assemble_engine([(strat, "X")], ReplayFeed(bars.iloc[:120], "X"), EX, store=store,
                            config=EngineConfig(account="acct", direction="both",
                                                stops=Stops(sl=0.02, time_bars=5)))
    first.run()
    run_id = first.run_id
    assert store.get_run(run_id).trade() == {"direction": "both", "sl": 0.02, "tp": None,
                                             "trail": None, "time_stop": 5}

    with pytest.raises(RecoveryError, match=rf"^sl = 0.03: run {run_id} was started with sl = 0.02 "):
        assemble_engine([(strat, "X")], ReplayFeed(bars, "X"), EX, store=store, resume=run_id,
                        config=EngineConfig(account="acct", stops=Stops(sl=0.03, time_bars=5)))
    with pytest.raises(RecoveryError, match=rf"^direction = 'long': run {run_id} trades 'both'"):
        assemble_engine([(strat, "X")], ReplayFeed(bars, "X"), EX, store=store, resume=run_id,
                        config=EngineConfig(account="acct", direction="long"))
    stopped = store.get_run(run_id)
    assert stopped.status == "finished" and stopped.owner is None  # refused before its lease

    # Nothing given: the strategy's own would be long-only without stops; the run's are used.
    resumed = assemble_engine([(strat, "X")], ReplayFeed(bars, "X"), EX, store=store,
                              resume=run_id, config=EngineConfig(account="acct"))
    (runner,) = resumed.runners["X"]
    assert (runner.direction, runner.stops) == ("both", Stops(sl=0.02, time_bars=5))
    resumed.run()
    assert store.get_run(run_id).trade()["direction"] == "both"
