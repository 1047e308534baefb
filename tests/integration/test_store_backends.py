"""The store under concurrency and crashes, with real processes, on both backends."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tradelab.store import Store

D = Decimal
T0 = datetime(2024, 3, 1, tzinfo=UTC)
WORKERS = 4
ROUNDS = 25


@pytest.fixture()
def store(store_url: str) -> Iterator[Store]:
    s = Store(store_url)
    s.upgrade()
    with s.transaction() as tx:
        tx.ensure_account("shared", D(0))
    yield s
    s.close()


def _ctx() -> mp.context.SpawnContext:
    # spawn, not fork: a forked child would inherit the parent's pooled
    # connections, which is exactly the bug production code must not have.
    return mp.get_context("spawn")


def _run_workers(target, *args: object) -> None:  # type: ignore[no-untyped-def]
    procs = [_ctx().Process(target=target, args=(*args, i)) for i in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * WORKERS


def _locked_increments(url: str, worker: int) -> None:
    store = Store(url)
    for _ in range(ROUNDS):
        with store.transaction() as tx:
            cash = tx.lock_account("shared").cash
            time.sleep(0.001)  # widen the read-check-write window
            tx.set_cash("shared", cash + D("0.0000000001"))
    store.close()


def test_concurrent_increments_under_the_lock_never_lose_an_update(store: Store) -> None:
    _run_workers(_locked_increments, store.url.render_as_string(hide_password=False))
    assert store.get_account("shared").cash == D("0.0000000001") * WORKERS * ROUNDS  # type: ignore[union-attr]


def _racing_fills(url: str, worker: int) -> None:
    # Every worker receives the same fills (think: a re-delivering broker feed)
    # and applies a fill's cash effect only if add_fill says it is new.
    store = Store(url)
    with store.transaction() as tx:
        tx.upsert_order("o", at=T0, account="shared", symbol="X", side="buy", type="market",
                        quantity=D(1000))
    for n in range(ROUNDS):
        with store.transaction() as tx:
            if tx.add_fill(f"F-{n}", "o", "X", "buy", D(1), D(1), D(0), T0):
                cash = tx.lock_account("shared").cash
                tx.set_cash("shared", cash + 1)
    store.close()


def test_a_fill_delivered_to_several_processes_is_applied_once(store: Store) -> None:
    _run_workers(_racing_fills, store.url.render_as_string(hide_password=False))
    assert len(store.fills("shared")) == ROUNDS
    assert store.get_account("shared").cash == ROUNDS  # type: ignore[union-attr]


def _upgrade(url: str, worker: int) -> None:
    Store(url).upgrade()


def test_engines_starting_together_can_all_upgrade(store_url: str) -> None:
    _run_workers(_upgrade, store_url)
    assert Store(store_url).current_revision() == Store.head_revision()


def _read_then_write(store: Store, barrier: threading.Barrier | None, locked: bool,
                     took_lock: threading.Event | None = None) -> None:
    with store.transaction() as tx:
        cash = tx.lock_account("shared").cash if locked else tx.get_account("shared").cash  # type: ignore[union-attr]
        if took_lock is not None:
            took_lock.set()
        if barrier is not None:
            barrier.wait(timeout=10)
        else:
            time.sleep(0.2)  # hold the lock while the other thread tries to take it
        tx.set_cash("shared", cash + 1)


@pytest.mark.postgres
def test_without_the_lock_postgres_loses_the_update(pg_db_url: str) -> None:
    """The control experiment: proves the locked test above can fail."""
    store = Store(pg_db_url)
    store.upgrade()
    with store.transaction() as tx:
        tx.ensure_account("shared", D(0))
    barrier = threading.Barrier(2)  # both read 0 before either writes
    threads = [threading.Thread(target=_read_then_write, args=(store, barrier, False))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert store.get_account("shared").cash == 1  # type: ignore[union-attr]
    store.close()


def test_lock_account_makes_the_second_writer_wait(store: Store) -> None:
    took_lock = threading.Event()
    first = threading.Thread(target=_read_then_write, args=(store, None, True, took_lock))
    first.start()
    assert took_lock.wait(timeout=30)
    started = time.perf_counter()
    _read_then_write(store, None, True)
    first.join(timeout=30)
    assert time.perf_counter() - started > 0.05  # it waited for the holder ...
    # ... and then read its write: two increments, none lost.
    assert store.get_account("shared").cash == 2  # type: ignore[union-attr]


CRASHER = textwrap.dedent("""
    import os, sys
    from datetime import UTC, datetime
    from decimal import Decimal as D
    from tradelab.store import Store

    store = Store(sys.argv[1])
    t = datetime(2024, 3, 1, 15, tzinfo=UTC)
    with store.transaction() as tx:
        run = tx.start_run("shared", "sma", symbol="X", source="replay", mode="replay",
                           started_at=t)
        tx.upsert_order("o1", at=t, account="shared", run_id=run, symbol="X", side="buy",
                        type="market", quantity=D(5), status="submitted")
        tx.set_run_progress(run, t)
    with store.transaction() as tx:
        tx.add_fill("F-1", "o1", "X", "buy", D(5), D(10), D("0.01"), t)
        tx.set_cash("shared", D("-50.01"))
        tx.set_position("shared", "X", D(5), D(10), D(0))
        sys.stdout.write("mid-transaction\\n")
        sys.stdout.flush()
        os._exit(9)  # the process dies: no commit, no rollback, no cleanup
""")


def test_a_process_killed_mid_transaction_leaves_no_partial_fill(store: Store) -> None:
    url = store.url.render_as_string(hide_password=False)
    proc = subprocess.run([sys.executable, "-c", CRASHER, url], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": os.getcwd()}, check=False)
    assert proc.returncode == 9, proc.stderr
    assert proc.stdout == "mid-transaction\n"
    state = store.account_state("shared")
    assert state.account.cash == 0
    assert state.positions == ()
    assert store.fills("shared") == []
    assert [o.client_order_id for o in state.open_orders] == ["o1"]
    assert state.last_run is not None
    assert (state.last_run.status, state.last_run.last_bar_time) == (
        "running", datetime(2024, 3, 1, 15, tzinfo=UTC))
    # The restarted engine replays the fill: applied now, exactly once.
    with store.transaction() as tx:
        assert tx.add_fill("F-1", "o1", "X", "buy", D(5), D(10), D("0.01"), T0)


@pytest.mark.postgres
def test_each_test_gets_a_fresh_postgres_database(pg_db_url: str, pg_server) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    engine = sa.create_engine(pg_db_url)
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []
        assert conn.exec_driver_sql("SELECT current_database()").scalar() != "tradelab_test"
    engine.dispose()
    sys.stderr.write(f"\nPostgreSQL harness started in {pg_server.started_in:.2f}s\n")


def test_a_run_keeps_its_trade_options(store: Store) -> None:
    """--direction/--sl/--tp/--trail/--time-stop are stored with the run (migration 0009)."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    options = {"direction": "both", "sl": 0.03, "tp": 0.0625, "trail": None, "time_stop": 12}
    with store.transaction() as tx:
        kept = tx.start_run("shared", "sma_cross", symbol="SPX", source="sample", mode="paper",
                            started_at=T0, trade=options)
        legacy = tx.start_run("shared", "sma_cross", symbol="SPX", source="sample", mode="paper",
                              started_at=T0)
    run = store.get_run(kept)
    assert run.trade() == options and (run.sl, run.time_stop) == (0.03, 12)
    assert store.get_run(legacy).trade() is None  # options unknown: the command line's apply
    with pytest.raises(ValueError, match="direction = 'sideways': expected long, short or both"), \
            store.transaction() as tx:
        tx.start_run("shared", "x", symbol="SPX", source="sample", mode="paper", started_at=T0,
                     trade={"direction": "sideways"})
    with pytest.raises(ValueError, match=r"trade = \['stop'\]: unknown trade options"), \
            store.transaction() as tx:
        tx.start_run("shared", "x", symbol="SPX", source="sample", mode="paper", started_at=T0,
                     trade={"stop": 0.1})
    with pytest.raises(IntegrityError), store.engine.begin() as conn:  # the CHECK, below the store
        conn.execute(text("UPDATE runs SET direction = 'up' WHERE id = :id"), {"id": kept})
    assert store.get_run(kept).direction == "both"
