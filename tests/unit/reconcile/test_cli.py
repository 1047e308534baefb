"""``tradelab broker ...`` with the paper broker and a real SQLite store."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.reconcile.conftest import T0
from tradelab.cli import app
from tradelab.store import Store


@pytest.fixture()
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = Store(url)
    store.upgrade()
    with store.transaction() as tx:   # the paper venue starts with [research] cash
        tx.ensure_account("acct", Decimal(100_000))
    store.close()
    return url


def _run(environ: dict[str, str], *args: str) -> object:
    return CliRunner().invoke(app, ["broker", *args], env=environ)


def test_reconcile_exits_0_when_the_store_agrees_and_1_on_a_mismatch(environ: dict[str, str],
                                                                      db: str) -> None:
    common = ["--broker", "paper", "--account", "acct", "--db", db]
    agree = _run(environ, "reconcile", *common)
    assert agree.exit_code == 0, agree.output
    assert "paper (manual): in agreement; nothing found" in agree.stdout
    assert "stored as reconciliation #1" in agree.stdout

    store = Store(db)
    with store.transaction() as tx:   # a position the (fresh, empty) paper venue does not hold
        tx.set_position("acct", "SPX", Decimal(5), Decimal(100), Decimal(0))
        tx.upsert_order("tl-1", at=T0, account="acct", symbol="SPX", side="sell", type="limit",
                        quantity=Decimal(5), limit_price=Decimal(120), status="submitted")
    mismatch = _run(environ, "reconcile", *common, "--json")
    assert mismatch.exit_code == 1, mismatch.output
    out = json.loads(mismatch.stdout)
    assert out["ok"] is False and out["trigger"] == "manual" and out["id"] == 2
    assert [f["kind"] for f in out["findings"]] == ["not_at_venue", "position_mismatch"]

    history = _run(environ, "reconcile", *common, "--history", "5")
    assert history.exit_code == 0
    lines = [ln for ln in history.stdout.splitlines() if ln.startswith("#")]
    assert len(lines) == 2 and "MISMATCH" in lines[0] and ": ok," in lines[1]
    assert "SPX: store 5, venue 0" in history.stdout
    rows = store.reconcile.reconciliations("acct")
    assert [r.ok for r in rows] == [False, True]
    assert store.get_order("tl-1").status == "submitted"   # report only: nothing changed
    store.close()


def test_status_orders_and_positions(environ: dict[str, str], db: str) -> None:
    store = Store(db)
    with store.transaction() as tx:
        tx.set_position("acct", "SPX", Decimal(5), Decimal(100), Decimal(0))
    store.close()
    common = ["--broker", "paper", "--account", "acct", "--db", db]
    status = _run(environ, "status", *common, "--json")
    assert status.exit_code == 0, status.output
    out = json.loads(status.stdout)
    assert out["connected"] and out["simulated"] and out["open_orders"] == {"ours": 0, "foreign": 0}
    assert out["balances"]["cash"]["free"] == "100000.0" and out["last_reconciliation"] is None

    orders = _run(environ, "orders", *common)
    assert orders.exit_code == 0 and "no open orders at paper" in orders.stdout

    positions = _run(environ, "positions", *common)
    assert positions.exit_code == 0
    assert positions.stdout.split() == ["SPX", "venue", "0", "store", "5", "MISMATCH"]


def test_an_unknown_broker_is_refused(environ: dict[str, str], db: str) -> None:
    res = _run(environ, "status", "--broker", "nope", "--db", db)
    assert res.exit_code == 2 and "unknown broker" in res.stderr
