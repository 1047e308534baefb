"""From a notebook: `App.engine` / `App.portfolio_engine` resumed without an execution run
with the one stored with the run, and `run_drift` judges the run with it."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "var/numba-cache"))  # research imports vectorbt

from tradelab.app.recovery import RecoveryError  # noqa: E402
from tradelab.data.universe import align, load_universe  # noqa: E402
from tradelab.drift_run import run_drift  # noqa: E402
from tradelab.execution import Execution  # noqa: E402
from tradelab.parity_portfolio import compare_portfolio  # noqa: E402
from tradelab.research.portfolio import backtest_portfolio  # noqa: E402

pytestmark = pytest.mark.slow
EX = Execution(fees=0.001, slippage=0.0005, size=10.0, size_type="amount", borrow_fee=0.05)
WINDOW = {"source": "sample", "start": "2012-01-01", "end": "2014-12-31"}


@pytest.fixture(scope="module")
def tl(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tradelab.app import build
    from tradelab.config import load_config

    tmp = tmp_path_factory.mktemp("resume_execution")
    env = {"TRADELAB_HOME": str(ROOT), "TRADELAB__CACHE__DIR": str(tmp / "cache"),
           "PATH": os.environ.get("PATH", ""),
           "TRADELAB__STORE__URL": f"sqlite:///{tmp / 'engine.db'}"}
    return build(load_config(environ=env, home=ROOT))


def _stopped(engine: Any, after: int) -> Any:
    seen: list[int] = []

    def stop(_bar: Any) -> None:
        seen.append(1)
        if len(seen) == after:
            engine.request_stop("test")

    result = engine.run(on_bar=stop)
    assert result.stopped == "stopped"
    return result


def _fills(tl: Any, account: str, run_id: int) -> list[tuple[Any, ...]]:
    return [(f.at, f.side, f.quantity, f.price, f.fees) for f in tl.store.fills(account, run_id)]


def test_a_resumed_engine_and_the_drift_report_use_the_stored_execution(tl) -> None:
    assert tl.execution != EX
    whole = tl.engine("sma_cross", "SPX", execution=EX, direction="both", account="whole",
                      **WINDOW).run()
    first = tl.engine("sma_cross", "SPX", execution=EX, direction="both", account="parts",
                      **WINDOW)
    run_id = int(_stopped(first, 300).run_id)
    with pytest.raises(RecoveryError, match=rf"^slippage = 0.0: run {run_id} was started "
                                            r"with slippage = 0.0005 \(stored with the run\)$"):
        tl.engine("sma_cross", "SPX", execution=replace(EX, slippage=0.0), account="parts",
                  resume=run_id, **WINDOW)
    second = tl.engine("sma_cross", "SPX", account="parts", resume=run_id, **WINDOW)
    assert second.execution == EX and second.broker.execution == EX  # the broker's too
    second.run()
    assert _fills(tl, "parts", run_id) == _fills(tl, "whole", int(whole.run_id))

    report = run_drift(tl, run_id, compare_source=False)  # nothing given: the run's options
    trades = report.to_dict()["trades"]
    assert report.execution == EX and abs(report.gap) < 1e-6
    assert trades["run"] == trades["research"] > 10 and trades["kinds"] == {"match": trades["run"]}


def test_a_resumed_portfolio_engine_uses_the_stored_execution(tl) -> None:
    from tradelab.research.portfolio import portfolio_strategy

    def pairs() -> Any:
        return portfolio_strategy("pairs_kopep", paths=[ROOT / "strategies"])

    ex = Execution(fees=0.001, slippage=0.0005, borrow_fee=0.05)
    bars = load_universe(("KO", "PEP"), "sample", "2010-01-01", "2011-12-31")
    research = backtest_portfolio(pairs(), panel=align(bars), execution=ex)
    first = tl.portfolio_engine(pairs(), bars=bars, execution=ex, account="pairs")
    run_id = int(_stopped(first, 200).run_id)
    second = tl.portfolio_engine(pairs(), bars=bars, account="pairs", resume=run_id)
    assert second.execution == ex and second.broker.execution == ex
    second.run()
    stored = compare_portfolio(research, tl.store.fills("pairs", run_id),
                               [(p.at, float(p.equity)) for p in tl.store.equity_curve("pairs", run_id)])
    assert stored.ok, stored.to_dict()
