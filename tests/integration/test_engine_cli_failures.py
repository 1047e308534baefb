"""`tradelab paper` when processing a bar raises: the run halts with its reason and resumes.

A strategy defined here raises on the K-th bar the engine evaluates while the
environment variable ``BRITTLE_AT=K`` is set (research frames never count, so
``tradelab check`` passes). The CLI runs in a subprocess, like an operator's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tradelab.store import Store

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

BRITTLE = '''
import os

import pandas as pd

from tradelab.strategy.base import Param, Signals, Strategy
from tradelab.strategy.indicators import crossed_above, crossed_below, sma

_CALLS = [0]


class Brittle(Strategy):
    """sma_cross, except that it raises on the engine's BRITTLE_AT-th evaluated bar."""

    name = "brittle"
    numpy_columns = True
    fast = Param(10, low=2, high=500)
    slow = Param(30, low=3, high=1000)

    @property
    def warmup(self) -> int:
        return int(self.slow) + 1

    def signals(self, bars):
        if not isinstance(bars, pd.DataFrame):  # the engine's per-bar window
            _CALLS[0] += 1
            if str(_CALLS[0]) == os.environ.get("BRITTLE_AT"):
                raise RuntimeError("brittle: a tick it cannot handle")
        close = bars["close"]
        fast, slow = sma(close, self.fast), sma(close, self.slow)
        return Signals(crossed_above(fast, slow), crossed_below(fast, slow))
'''

WINDOW = ["--source", "sample", "--symbol", "SPX", "--start", "2012-01-01", "--end", "2015-12-31"]
K = 400  # the evaluated bar that raises: well after the first orders, well before the end


@pytest.fixture()
def env(environ: dict[str, str], tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "brittle.py").write_text(BRITTLE)
    return {**environ, "PYTHONPATH": str(ROOT),
            "TRADELAB__STORE__URL": f"sqlite:///{tmp_path / 'default.db'}",
            "TRADELAB__STRATEGIES__PATHS": json.dumps([str(ROOT / "strategies"), str(folder)])}


def _paper(env: dict[str, str], db: str, account: str, *extra: str,
           brittle_at: int | None = None) -> subprocess.CompletedProcess:
    run_env = {**env, **({"BRITTLE_AT": str(brittle_at)} if brittle_at is not None else {})}
    return subprocess.run([sys.executable, "-c", "from tradelab.cli import main; main()", "paper",
                           "brittle", *WINDOW, "--db", db, "--account", account, "--no-progress",
                           *extra], cwd=ROOT, env=run_env, capture_output=True, text=True,
                          timeout=300)


def _trades(store: Store, account: str, run_id: int) -> tuple[list[tuple], list[tuple]]:
    """Orders and fills without their run-specific ids, in order."""
    orders = [(o.created_at, o.side, o.quantity, o.status) for o in store.orders(account, run_id)]
    fills = [(f.at, f.side, f.quantity, f.price, f.fees) for f in store.fills(account, run_id)]
    return orders, fills


def test_a_bar_that_raises_halts_the_run_with_its_reason_and_resume_completes(env, tmp_path: Path,
                                                                              spx) -> None:
    db = f"sqlite:///{tmp_path / 'engine.db'}"
    reference = _paper(env, db, "reference")
    assert reference.returncode == 0, reference.stderr

    failed = _paper(env, db, "brittle", brittle_at=K)
    assert failed.returncode != 0, failed.stdout + failed.stderr
    store = Store(db)
    run = store.runs("brittle")[-1]
    # The bar that raised: the K-th after the strategy's first warmup - 1 bars.
    bars = spx.loc["2012-01-01":"2015-12-31"]
    at = bars.index[31 - 1 + K - 1].to_pydatetime()
    reason = f"RuntimeError: brittle: a tick it cannot handle (at bar {at.isoformat()}, SPX)"
    last = [line for line in failed.stderr.splitlines() if line.strip()][-1]
    assert last == (f"error: run {run.id} halted: {reason} "
                    f"(resume with --resume {run.id} once the cause is fixed)")
    assert "Traceback" not in failed.stdout
    assert run.status == "failed" and run.summary["stop_reason"] == reason
    assert run.last_bar_time == bars.index[31 - 1 + K - 2].to_pydatetime()  # the bar before
    events = [e for e in store.risk_events("brittle") if e.rule == "engine_error"]
    assert [(e.severity, e.message) for e in events] == [("critical", f"run {run.id} halted: {reason}")]
    # Every order decided before the failing bar was stored, and nothing after it.
    ref_run = store.runs("reference")[-1]
    ref_orders, ref_fills = _trades(store, "reference", ref_run.id)
    orders, fills = _trades(store, "brittle", run.id)
    assert len(orders) >= 6
    assert orders == [o for o in ref_orders if o[0] < at][:len(orders)]
    assert {o[0] for o in orders} == {o[0] for o in ref_orders if o[0] < at}
    assert fills == ref_fills[:len(fills)] and len(fills) >= sum(f[0] < at for f in ref_fills)

    resumed = _paper(env, db, "brittle", "--resume", str(run.id))
    assert resumed.returncode == 0, resumed.stderr
    done = store.get_run(run.id)
    assert done.status == "finished" and "stop_reason" not in done.summary
    # No order lost or sent twice: the resumed run traded exactly as the reference.
    assert _trades(store, "brittle", run.id) == (ref_orders, ref_fills)
    assert done.summary["bars"] == ref_run.summary["bars"] == len(bars)
    store.close()
