"""Crash recovery: SIGKILL the engine mid-replay of real SPX bars, restart it, compare."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _engine(db: Path, account: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRADELAB_HOME": str(ROOT)}
    cmd = [sys.executable, "-m", "tradelab.engine", "sma_cross", "--db", f"sqlite:///{db}",
           "--account", account, "--flush-every", "25", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _store(db: Path):
    from tradelab.store import Store

    return Store(f"sqlite:///{db}")


def test_sigkill_mid_replay_then_resume_matches_uninterrupted_run(tmp_path: Path) -> None:
    db = tmp_path / "engine.db"
    # Reference: one uninterrupted run on its own account.
    ref = _engine(db, "reference")
    _, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err

    # Crash: throttle the replay so the kill lands mid-run, then SIGKILL.
    victim = _engine(db, "crashy", "--speed", "1500")
    first = victim.stdout.readline()
    assert first.startswith("run_id="), first + victim.stderr.read()
    run_id = int(first.strip().split("=")[1])
    store = _store(db)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until it has committed some progress and some fills
        run = store.get_run(run_id)
        if run.last_bar_time is not None and len(store.fills("crashy", run_id)) >= 6:
            break
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    crashed = store.get_run(run_id)
    assert crashed.status == "running" and crashed.last_bar_time is not None
    assert crashed.last_bar_time.year < 2018, "the kill must land mid-replay"
    state_after_crash = store.account_state("crashy")

    # Restart: resumes from the last processed bar with state from the store.
    resumed = _engine(db, "crashy", "--resume", str(run_id))
    _, err2 = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err2

    ref_run = store.runs("reference")[-1]
    final = store.get_run(run_id)
    assert final.status == "finished" and ref_run.status == "finished"
    assert final.last_bar_time == ref_run.last_bar_time
    # Exactly the same money: cash, positions and final equity.
    assert store.get_account("crashy").cash == store.get_account("reference").cash
    assert ([(p.symbol, p.quantity) for p in store.positions("crashy")]
            == [(p.symbol, p.quantity) for p in store.positions("reference")])
    assert final.summary["equity"] == ref_run.summary["equity"]
    # No order lost, none sent twice: same trades, one fill per order, one order per decision.
    fills = store.fills("crashy", run_id)
    ref_fills = store.fills("reference", ref_run.id)
    assert [(f.at, f.side, f.quantity, f.price, f.fees) for f in fills] == \
        [(f.at, f.side, f.quantity, f.price, f.fees) for f in ref_fills]
    per_order = Counter(f.client_order_id for f in fills)
    assert set(per_order.values()) == {1}
    orders = store.orders("crashy", run_id)
    ref_orders = store.orders("reference", ref_run.id)
    assert len(orders) == len({o.client_order_id for o in orders}) == len(ref_orders)
    assert all(o.status == "filled" for o in orders[:-1])
    # What the crash left open was carried over, not duplicated.
    for o in state_after_crash.open_orders:
        assert per_order[o.client_order_id] <= 1


def test_sigterm_stops_gracefully_and_persists(tmp_path: Path) -> None:
    db = tmp_path / "engine.db"
    proc = _engine(db, "term", "--speed", "800")
    first = proc.stdout.readline()
    assert first.startswith("run_id="), first + proc.stderr.read()
    run_id = int(first.strip().split("=")[1])
    store = _store(db)
    deadline = time.monotonic() + 60
    while store.get_run(run_id).last_bar_time is None and time.monotonic() < deadline:
        time.sleep(0.05)  # until it has committed some progress (not a fixed delay)
    assert store.get_run(run_id).last_bar_time is not None
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "status=stopped" in out
    run = store.get_run(run_id)
    assert run.status == "stopped"
    curve = store.equity_curve("term", run_id)
    assert curve and curve[-1].at == run.last_bar_time      # final snapshot written
    assert run.summary["bars"] == len(curve)
    assert str(curve[-1].equity) == run.summary["equity"] or \
        abs(curve[-1].equity - __import__("decimal").Decimal(run.summary["equity"])) < 1e-9
