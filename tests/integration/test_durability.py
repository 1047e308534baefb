"""Durable writes fail closed: a commit that cannot happen stops the order and halts the run.

Each test reproduces a failure found by fault injection (issue 11) before the fix:
the write-ahead commit failing under a write-locked SQLite file or a full disk, and
a PostgreSQL server stopped mid-run. In each case no order may reach the broker
without its row, the process must end non-zero with one line naming the cause, and
``--resume`` must continue the run exactly.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from tradelab.app import assemble_engine
from tradelab.app.recovery import RecoveryError
from tradelab.engine import EngineConfig, ReplayFeed
from tradelab.errors import RunHalted
from tradelab.execution import Execution
from tradelab.store import Store

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _engine_cmd(url: str, account: str, *extra: str, limit_bytes: int | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRADELAB_HOME": str(ROOT)}
    cmd = [sys.executable, "-m", "tradelab.engine", "sma_cross", "--db", url, "--account", account,
           "--flush-every", "25", *extra]

    def limit() -> None:  # the child's files may not grow past this: a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=limit if limit_bytes else None)


def _finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _wait_for(predicate, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _history(store: Store, account: str, run_id: int) -> list[tuple]:
    """Every order of the run with its whole audit trail (states and reasons, times aside)."""
    out = []
    for o in store.orders(account, run_id):
        events = [(e.from_state, e.to_state, e.reason) for e in store.order_events(o.client_order_id)]
        out.append((o.created_at, o.side, o.status, o.quantity, tuple(events)))
    return sorted(out)


def _money(store: Store, account: str, run_id: int) -> tuple:
    fills = [(f.at, f.side, f.quantity, f.price, f.fees) for f in store.fills(account, run_id)]
    return (store.get_account(account).cash, fills,
            [(p.symbol, p.quantity) for p in store.positions(account)])


def _assert_same_run(store: Store, account: str, run_id: int, ref_account: str, ref_id: int) -> None:
    run, ref = store.get_run(run_id), store.get_run(ref_id)
    assert run.status == ref.status == "finished"
    assert run.last_bar_time == ref.last_bar_time
    assert run.summary["equity"] == ref.summary["equity"]
    assert run.summary["fills"] == ref.summary["fills"] == len(store.fills(account, run_id))
    assert run.summary["bars"] == ref.summary["bars"]
    assert _money(store, account, run_id) == _money(store, ref_account, ref_id)
    assert _history(store, account, run_id) == _history(store, ref_account, ref_id)
    curve = store.equity_curve(account, run_id)
    assert len(curve) == len({p.at for p in curve}) == run.summary["bars"]  # no duplicate snapshot


def _resume_and_compare(url: str, account: str, run_id: int, ref_id: int) -> None:
    """``--resume`` the halted run once the cause is gone: it must end as the reference did."""
    code, _, err = _finish(_engine_cmd(url, account, "--resume", str(run_id)))
    assert code == 0, err
    store = Store(url)
    _assert_same_run(store, account, run_id, "reference", ref_id)
    store.close()


def test_a_write_locked_database_stops_the_order_and_halts_the_run(tmp_path: Path, registry,
                                                                   spx) -> None:
    db = tmp_path / "locked.db"
    store = Store(f"sqlite:///{db}", busy_timeout_ms=200)
    store.upgrade()
    bars = spx.loc["2009":"2012"]
    config = {"flush_every": 10**6, "flush_seconds": 0.0, "lease_seconds": 0.5}

    def engine(account: str, resume: int | None = None):
        return assemble_engine([(registry.create("sma_cross", fast=10, slow=30), "SPX")],
                               ReplayFeed(bars, "SPX"), Execution(), store=store, resume=resume,
                               config=EngineConfig(account=account, **config))

    reference = engine("reference").run()
    victim = engine("locked")
    broker = victim.broker
    # Another process takes the write lock once two orders are at the broker and keeps it:
    # the only commits of this run are write-aheads, so the next order's commit fails.
    locker = sqlite3.connect(db, isolation_level=None, timeout=5)
    held: list = []

    def on_bar(_bar) -> None:
        if not held and broker.submissions >= 2:
            locker.execute("BEGIN EXCLUSIVE")
            held.append(True)

    with pytest.raises(RunHalted) as halted:
        victim.run(on_bar=on_bar)
    assert held, "the lock was never taken: the test did not reach an order"
    reason = halted.value.reason
    assert reason.startswith("write-ahead commit of order tl-") and reason.endswith("database locked")
    failed_cid = reason.split()[4]
    assert victim.orders.orders[failed_cid].state.value == "new"  # decided, never sent
    locker.execute("ROLLBACK")
    locker.close()
    stored = {o.client_order_id for o in store.orders("locked")}
    assert failed_cid not in stored
    assert broker.submissions == len(stored)  # nothing at the venue the store has not heard of
    assert failed_cid not in {r.client_order_id for r in broker.open_orders()}

    # Once the lock is gone, --resume continues exactly (the lease of the halted engine
    # expires first: it could not release it while the database was locked).
    run_id = victim.run_id
    resumed = None

    def resume_accepted() -> bool:
        nonlocal resumed
        try:
            resumed = engine("locked", resume=run_id)
        except RecoveryError:
            return False
        return True

    _wait_for(resume_accepted, "the halted run's lease to expire")
    result = resumed.run()
    assert result.equity == reference.equity
    assert [(f.at, f.side, f.quantity, f.price) for f in result.fills] == \
        [(f.at, f.side, f.quantity, f.price) for f in reference.fills]
    _assert_same_run(store, "locked", run_id, "reference", reference.run_id)
    store.close()


def test_a_full_disk_halts_with_one_line_and_resume_is_exact(tmp_path: Path) -> None:
    db = tmp_path / "full.db"
    url = f"sqlite:///{db}"
    ref = _engine_cmd(url, "reference")
    code, _, err = _finish(ref)
    assert code == 0, err
    store = Store(url)
    ref_id = store.runs("reference")[-1].id
    store.close()
    # Room for start-up and some trading, not for the whole run (the reference used
    # about this much in total): the database cannot grow past it.
    size = db.stat().st_size + sum(p.stat().st_size for p in tmp_path.glob("full.db-*"))
    victim = _engine_cmd(url, "full", limit_bytes=size + 160_000)
    code, out, err = _finish(victim)
    assert code == 3, out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in out + err
    assert lines[-1].startswith("error: run ") and "halted" in lines[-1]
    assert "disk full" in lines[-1], lines[-1]
    store = Store(url)
    run_id = store.runs("full")[-1].id
    assert store.get_run(run_id).last_bar_time is not None, "the disk filled before any progress"
    store.close()

    _resume_and_compare(url, "full", run_id, ref_id)


@pytest.mark.postgres
def test_postgres_stopped_mid_run_halts_cleanly_and_resumes_exactly(private_pg) -> None:
    url = private_pg.create_database("halting")
    ref = _engine_cmd(url, "reference")
    code, _, err = _finish(ref)
    assert code == 0, err
    store = Store(url)
    ref_id = store.runs("reference")[-1].id

    victim = _engine_cmd(url, "victim", "--speed", "1500")
    first = victim.stdout.readline()
    assert first.startswith("run_id="), first + victim.stderr.read()
    run_id = int(first.strip().split("=")[1])
    _wait_for(lambda: len(store.fills("victim", run_id)) >= 8 and
              store.get_run(run_id).last_bar_time is not None, "the victim to trade")
    store.close()
    private_pg.halt()  # pg_ctl stop -m fast: every connection is dropped
    code, out, err = _finish(victim)
    assert code == 3, out + err
    assert "Traceback" not in out + err
    last = [line for line in err.splitlines() if line.strip()][-1]
    assert last.startswith(f"error: run {run_id} halted") and "connection lost" in last, last

    private_pg.restart()
    _resume_and_compare(url, "victim", run_id, ref_id)


def test_the_account_keeps_exact_money_after_a_failed_commit(tmp_path: Path, registry, spx) -> None:
    """A halted run leaves the store at its last commit: nothing half-written."""
    db = tmp_path / "half.db"
    store = Store(f"sqlite:///{db}", busy_timeout_ms=100)
    store.upgrade()
    bars = spx.loc["2011":"2012"]
    engine = assemble_engine([(registry.create("sma_cross", fast=10, slow=30), "SPX")],
                             ReplayFeed(bars, "SPX"), Execution(), store=store,
                             config=EngineConfig(account="half", flush_every=50, flush_seconds=0.0))
    locker = sqlite3.connect(db, isolation_level=None, timeout=5)
    seen: list = []

    def on_bar(_bar) -> None:
        seen.append(1)
        if len(seen) == 120:
            locker.execute("BEGIN EXCLUSIVE")

    with pytest.raises(RunHalted):
        engine.run(on_bar=on_bar)
    locker.execute("ROLLBACK")
    locker.close()
    run = store.get_run(engine.run_id)
    committed = store.equity_curve("half", engine.run_id)
    # The last commit was a consistent cut: progress mark, snapshots and cash agree.
    assert committed and committed[-1].at == run.last_bar_time
    assert store.get_account("half").cash == committed[-1].cash
    assert all(isinstance(p.equity, Decimal) for p in committed)
    store.close()
