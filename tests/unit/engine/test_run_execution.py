"""A run stores its execution convention; a resume runs with it and refuses another one."""

from __future__ import annotations

from dataclasses import asdict, replace
from decimal import Decimal
from typing import Any

import pytest

from tradelab.app import assemble_engine
from tradelab.app.recovery import RecoveryError
from tradelab.engine import EngineConfig, ReplayFeed
from tradelab.execution import Execution
from tradelab.store import Store
from tradelab.testing import make_bars

#: Nothing like the default convention (fees 0.0005, all the cash per entry, no borrow fee).
EX = Execution(fees=0.001, slippage=0.0005, size=10.0, size_type="amount", borrow_fee=0.05)
BOTH = {"direction": "both"}


def _fills(store: Store, account: str, run_id: int) -> list[tuple[Any, ...]]:
    return [(f.at, f.side, f.quantity, f.price, f.fees) for f in store.fills(account, run_id)]


def test_a_resume_without_an_execution_runs_with_the_stored_one(registry, store: Store) -> None:
    bars = make_bars(240, seed=3)

    def engine(account: str, execution: Execution | None, resume: int | None = None) -> Any:
        strat = registry.create("sma_cross", fast=3, slow=12)
        return assemble_engine([(strat, "X")], ReplayFeed(bars, "X"), execution, store=store,
                               resume=resume, config=EngineConfig(account=account, **BOTH))

    whole = engine("reference", EX)
    whole.run()
    first = engine("resumed", EX)
    seen: list[int] = []

    def stop(_bar: Any) -> None:
        seen.append(1)
        if len(seen) == 130:
            first.request_stop("test")

    part = first.run(on_bar=stop)
    run_id = int(part.run_id)
    assert part.stopped == "stopped" and store.get_run(run_id).execution == asdict(EX)

    with pytest.raises(RecoveryError, match=rf"^fees = 0.002: run {run_id} was started with "
                                            r"fees = 0.001 \(stored with the run\)$"):
        engine("resumed", replace(EX, fees=0.002), resume=run_id)
    assert store.get_run(run_id).owner is None  # refused before its lease was taken

    resumed = engine("resumed", None, resume=run_id)
    assert resumed.execution == EX and resumed.broker.execution == EX
    resumed.run()
    fills = _fills(store, "resumed", run_id)
    assert fills == _fills(store, "reference", int(whole.run_id))
    after = [f for f in fills if f[0] > part.equity_curve[-1][0]]
    assert after and {f[2] for f in after} <= {Decimal(10), Decimal(20)}  # --size 10 amount
    sold = [f for f in after if f[1] == "sell"]
    assert sold and all(float(fees) == pytest.approx(float(q * p) * 0.001, rel=1e-9)
                        for _, _, q, p, fees in sold)
    assert store.get_run(run_id).execution == asdict(EX)  # a resume does not rewrite it
