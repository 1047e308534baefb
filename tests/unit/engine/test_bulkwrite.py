"""The flush's DBAPI-level writes store exactly the bytes the Transaction methods store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tradelab.app import assemble_engine
from tradelab.engine import EngineConfig, ReplayFeed
from tradelab.execution import Execution
from tradelab.store import Store
from tradelab.testing import make_bars

TABLES = ("accounts", "orders", "order_events", "fills", "positions", "equity_snapshots")


def _run(registry, db: Path, driver: bool, flush_every: int, side: bool = True) -> dict[str, list[tuple]]:
    store = Store(f"sqlite:///{db}")
    store.upgrade()
    engine = assemble_engine([(registry.create("sma_cross", fast=3, slow=8), "X")],
                    ReplayFeed(make_bars(400, seed=5), "X"), Execution(), store=store,
                    config=EngineConfig(account="bulk", flush_every=flush_every))
    assert engine.recorder is not None
    engine.recorder.use_driver = driver
    if not side:  # no held connection: driver statements inside the SQLAlchemy transaction
        engine.recorder.side = None
    engine.run()
    assert (engine.recorder._driver is not None) == driver
    store.close()
    con = sqlite3.connect(db)
    try:  # raw rows as stored (text of amounts and times), every column
        tables = {t: con.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in TABLES}
        tables["runs"] = con.execute("SELECT id, last_bar_time FROM runs").fetchall()
    finally:
        con.close()
    return tables


@pytest.mark.parametrize(("flush_every", "side"), [(1, True), (7, True), (50, True), (7, False)])
def test_driver_writes_are_byte_identical(registry, tmp_path: Path, flush_every: int,
                                          side: bool) -> None:
    fast = _run(registry, tmp_path / "fast.db", True, flush_every, side)
    slow = _run(registry, tmp_path / "slow.db", False, flush_every)
    assert fast["fills"] and len(fast["equity_snapshots"]) == 400
    for table, rows in slow.items():
        assert fast[table] == rows, table


def test_snapshot_rows_match_the_transaction_method(tmp_path: Path) -> None:
    """The recorder's pre-bound snapshot rows store what add_equity_snapshots stores."""
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from tradelab.store.tx import equity_bind_processors

    db = tmp_path / "snap.db"
    store = Store(f"sqlite:///{db}")
    store.upgrade()
    t0 = datetime(2021, 3, 4, 21, tzinfo=UTC)
    amounts = [Decimal("100000"), Decimal("0.1"), Decimal("-0"), Decimal("12.34567890123456789"),
               Decimal("98765.43210987654321")]
    with store.transaction() as tx:
        aid = tx.ensure_account("a", Decimal(100000))
        snaps = [{"account": "a", "at": t0 + timedelta(days=i), "cash": amounts[i % 5],
                  "positions_value": amounts[(i + 1) % 5], "equity": amounts[(i + 2) % 5],
                  "drawdown": amounts[(i + 3) % 5], "run_id": None} for i in range(10)]
        tx.add_equity_snapshots(snaps)
        procs = equity_bind_processors(tx._conn.dialect)
        rows = [tuple(v if p is None else p(v) for p, v in zip(procs, (
            aid, None, s["at"], s["cash"], s["positions_value"], s["equity"], s["drawdown"]),
            strict=True)) for s in snaps]
        tx.add_equity_snapshot_rows(rows)
    store.close()
    con = sqlite3.connect(db)
    got = con.execute("SELECT account_id, run_id, at, cash, positions_value, equity, drawdown "
                      "FROM equity_snapshots ORDER BY id").fetchall()
    con.close()
    assert got[:10] == got[10:]
    assert got[0][2] == "2021-03-04 21:00:00.000000" and got[0][3] == "100000.0000000000"
