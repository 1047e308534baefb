"""The scheduled job gets every part from the composition root (issue 11, item 1).

Before, ``notebooks/03_live_job.ipynb`` built ``Engine(...)`` itself and so ran
without the configured ``[risk]`` limits: with ``max_order_notional = 1`` it
stored 8 fills and no risk event, where ``tradelab paper`` stored none and four
denials.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tradelab.store import Store

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_the_job_notebook_runs_under_the_configured_risk_limits(tmp_path: Path) -> None:
    db = tmp_path / "job.db"
    env = {**os.environ, "TRADELAB_HOME": str(ROOT), "TRADELAB__RISK__MAX_ORDER_NOTIONAL": "1",
           "TRADELAB__JOBS__RUNS_DIR": str(tmp_path / "runs")}
    proc = subprocess.run([str(Path(sys.executable).with_name("tradelab")), "run",
                           str(ROOT / "notebooks" / "03_live_job.ipynb"), "--db", f"sqlite:///{db}",
                           "-p", "db", f"sqlite:///{db}", "--json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    store = Store(f"sqlite:///{db}")
    run = store.runs()[-1]
    assert run.status == "finished" and run.mode == "replay"
    assert store.fills(run.account, run.id) == []
    denials = [e for e in store.risk_events(run.account) if e.rule == "max_order_notional"]
    assert denials, "the configured limit was not applied"
    orders = store.orders(run.account, run.id)
    assert orders and all(o.status == "rejected" for o in orders)
    store.close()
