"""``tradelab broker ...`` with the paper broker and a real SQLite store."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.unit.reconcile.conftest import T0
from tradelab.app.brokers import BROKERS
from tradelab.cli import app
from tradelab.store import Store
from tradelab.testing import FakeVenue


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


def _fake_venue(venue: FakeVenue) -> Any:
    def factory(execution: Any, symbols: set[str], config: Any, settings: Any) -> FakeVenue:
        return venue

    return factory


def test_a_live_venue_s_orders_are_split_into_ours_and_foreign(
        environ: dict[str, str], db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    venue = FakeVenue(cash=100_000)
    venue.place("tl-9", "SPX", "buy", 2)
    venue.place("by-hand", "SPX", "sell", 1)
    venue.set_position("SPX", 1)
    monkeypatch.setitem(BROKERS, "fakevenue", _fake_venue(venue))
    common = ["--broker", "fakevenue", "--account", "acct", "--db", db]

    listed = _run(environ, "orders", *common, "--json")
    assert listed.exit_code == 0, listed.output
    assert [(r["client_order_id"], r["ours"]) for r in json.loads(listed.stdout)] == [
        ("tl-9", True), ("by-hand", False)]

    status = json.loads(_run(environ, "status", *common, "--json").stdout)
    assert status["open_orders"] == {"ours": 1, "foreign": 1} and not status["simulated"]
    assert status["balances"]["USD"]["total"] == "100000"

    found = _run(environ, "reconcile", *common)
    assert found.exit_code == 1
    assert "unknown_ours" in found.stdout and "foreign_order" in found.stdout
    assert "position_mismatch: SPX: store 0, venue 1" in found.stdout
    assert venue.reports["by-hand"].is_open and venue.reports["tl-9"].is_open   # untouched


def test_a_venue_error_is_printed_with_its_keys_masked(
        environ: dict[str, str], db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s3cr3t-venue-key-123"

    def down(*_: Any) -> FakeVenue:
        raise RuntimeError(f"401 signature invalid for key {secret}")

    monkeypatch.setitem(BROKERS, "down", down)
    res = _run({**environ, "TRADELAB_FAKE_API_KEY": secret}, "reconcile", "--broker", "down",
               "--db", db)
    assert res.exit_code == 2 and "401 signature invalid" in res.stderr
    assert secret not in res.output and secret not in res.stderr
