"""Two engine processes, two strategies, one account, one PostgreSQL server.

Each engine wants to hold 10 units at 100 (1,000 of exposure) on every
high-volume bar of its own symbol; the account's gross-exposure limit is
1,500, so the two can never both be long. The engines run side by side at
full speed, so their order checks collide constantly. The account's limits
are judged in the store under the account's row lock: at no point may the
account's positions, in the order they were committed, exceed the limit.
The kill switch, engaged while both run, must stop both within one bar.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select, text

from tradelab.store import Store
from tradelab.store.reads import F, R

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.postgres]
PRICE, QTY, LIMIT = Decimal(100), Decimal(10), Decimal(1500)
DATES = pd.bdate_range("2021-01-04", periods=400, tz="UTC")


def write_bars(root: Path, symbol: str, n: int) -> None:
    # Flat prices (exposure is exactly quantity × 100), volume alternating high/low so
    # the strategies want to be long every other bar, both engines on the same bars.
    vol = [2_000_000.0 if i % 2 == 0 else 1_000_000.0 for i in range(n)]
    pd.DataFrame({"Date": DATES[:n].strftime("%Y-%m-%d"), "Open": 100.0, "High": 100.0,
                  "Low": 100.0, "Close": 100.0, "Volume": vol}).to_csv(root / f"{symbol}.csv",
                                                                        index=False)


@pytest.fixture()
def setup(tmp_path: Path, pg_db_url: str) -> dict[str, str]:
    data = tmp_path / "bars"
    data.mkdir()
    for sym in ("AAA", "BBB"):
        write_bars(data, sym, 400)
    return {
        **os.environ, "PYTHONPATH": str(ROOT), "TRADELAB_HOME": str(ROOT),
        "TRADELAB__STORE__URL": pg_db_url,
        "TRADELAB__ENGINE__SHARED_ACCOUNT": "true",
        "TRADELAB__ENGINE__ACCOUNT": "shared",
        "TRADELAB__ENGINE__FLUSH_EVERY": "1",
        "TRADELAB__RISK__MAX_GROSS_EXPOSURE": str(LIMIT),
        "TRADELAB__RESEARCH__CASH": "100000",
        "TRADELAB__RESEARCH__SIZE": str(QTY),
        "TRADELAB__RESEARCH__SIZE_TYPE": "amount",
        "TRADELAB__RESEARCH__FILL": "close",
        "TRADELAB__RESEARCH__FEES": "0",
        "TRADELAB__DATA__FILE__ROOT": str(data),
        "TRADELAB__STRATEGIES__PATHS": f'["{ROOT / "tests" / "fixtures" / "strategies"}"]',
        "TRADELAB__STRATEGIES__ENTRY_POINTS": "false",
        "TRADELAB__CACHE__DIR": str(tmp_path / "cache"),
    }


def engine(env: dict[str, str], strategy: str, symbol: str, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tradelab.engine", strategy, "--source", "file", "--symbol", symbol,
           *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def start_together(env: dict[str, str], url: str, *engines: tuple[str, str, tuple[str, ...]]
                   ) -> list[subprocess.Popen]:
    """Start the engines held at the account's lock, then let them all go at once.

    A new run's row references the account, so creating it waits while another
    transaction holds the account row FOR UPDATE; process start-up skew would
    otherwise let one engine finish before the other one begins.
    """
    store = Store(url)
    store.upgrade()
    with store.transaction() as tx:
        tx.ensure_account("shared", Decimal(100_000))
    procs = []
    with store.transaction() as tx, store.engine.connect() as probe:
        tx.lock_account("shared")
        procs = [engine(env, strategy, symbol, *extra) for strategy, symbol, extra in engines]
        deadline = time.monotonic() + 120
        while probe.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")).scalar_one() < len(procs):
            assert time.monotonic() < deadline, "the engines never reached the account lock"
            assert all(p.poll() is None for p in procs), procs[0].stderr.read()
            time.sleep(0.05)
            probe.rollback()  # a fresh snapshot of pg_stat_activity each time
    store.close()
    return procs


def run_id_of(proc: subprocess.Popen) -> int:
    first = proc.stdout.readline()
    assert first.startswith("run_id="), first + proc.stderr.read()
    return int(first.strip().split("=")[1])


def finish(*procs: subprocess.Popen) -> None:
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err


def test_two_engines_never_jointly_exceed_the_gross_exposure_limit(
        setup: dict[str, str], pg_db_url: str) -> None:
    end = ("--end", str(DATES[299].date()))
    a, b = start_together(setup, pg_db_url, ("flip_a", "AAA", end), ("flip_b", "BBB", end))
    runs = {run_id_of(a): "AAA", run_id_of(b): "BBB"}
    finish(a, b)

    store = Store(pg_db_url)
    with store.engine.connect() as conn:  # commit order: fills are inserted under the account lock
        rows = conn.execute(select(F.c.id, F.c.symbol, F.c.side, F.c.quantity, F.c.price)
                            .order_by(F.c.id)).all()
    held: dict[str, Decimal] = defaultdict(Decimal)
    peak = Decimal(0)
    for _, sym, side, qty, price in rows:
        assert price == PRICE and qty == QTY
        held[sym] += qty if side == "buy" else -qty
        gross = sum(abs(q) * PRICE for q in held.values())
        assert gross <= LIMIT, f"gross exposure {gross} after fill {_} exceeds {LIMIT}"
        peak = max(peak, gross)
    assert peak == Decimal(1000)                  # someone was long; never both at once

    # Both engines traded and both were held back by the account's limit.
    per_run = {rid: store.fills("shared", rid) for rid in runs}
    assert all(len(f) >= 4 for f in per_run.values()), {r: len(f) for r, f in per_run.items()}
    denied = [e for e in store.risk_events("shared") if e.rule == "max_gross_exposure"]
    assert {e.strategy for e in denied} == {"flip_a", "flip_b"}
    assert all(e.message.startswith("account: ") for e in denied)
    for rid in runs:
        rejected = [o for o in store.orders("shared", rid) if o.status == "rejected"]
        assert rejected and all("max_gross_exposure" in (o.reason or "") for o in rejected)

    # The stored account is every fill of both engines, booked exactly once.
    account = store.get_account("shared")
    spent = sum((f.quantity * f.price * (1 if f.side == "buy" else -1)
                 for f in store.fills("shared")), Decimal(0))
    assert account.cash == account.initial_cash - spent
    assert {p.symbol: p.quantity for p in store.positions("shared")} == dict(held)
    assert all(r.status == "finished" for r in store.runs("shared"))
    store.close()

    # The operator's view is the same account-wide view the rules used.
    tradelab = str(Path(sys.executable).with_name("tradelab"))  # the venv's console script
    out = subprocess.run([tradelab, "risk", "status", "--account", "shared", "--json"], cwd=ROOT,
                         env=setup, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert Decimal(str(status["gross_exposure"])) == sum(abs(q) * PRICE for q in held.values())
    assert Decimal(str(status["equity"])) == account.cash + sum(q * PRICE for q in held.values())
    assert status["open_orders"] == 0 and status["engaged"] is False


def test_kill_switch_stops_both_engines_within_one_bar(setup: dict[str, str], pg_db_url: str) -> None:
    env = {**setup, "TRADELAB__RISK__MAX_GROSS_EXPOSURE": "100000"}
    paced = ("--speed", "40", "--end", str(DATES[159].date()))
    a, b = start_together(env, pg_db_url, ("flip_a", "AAA", paced), ("flip_b", "BBB", paced))
    runs = {run_id_of(a): "flip_a", run_id_of(b): "flip_b"}
    store = Store(pg_db_url)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # both trading
        progress = [store.get_run(r).last_bar_time for r in runs]
        if all(t is not None and t >= DATES[10] for t in progress):
            break
        time.sleep(0.05)
    # Halt the way `tradelab risk halt` does, reading each run's last committed bar in the
    # same locked transaction: no engine can commit another bar in between.
    with store.transaction() as tx:
        tx.lock_account("shared")
        last = dict(tx._conn.execute(select(R.c.id, R.c.last_bar_time).where(R.c.id.in_(list(runs)))).all())
        tx.set_kill_switch("shared", True, "operator test halt", "test", pd.Timestamp.now(tz="UTC"))
    finish(a, b)

    events = store.risk_events("shared")
    for rid, strategy in runs.items():
        at_halt = DATES.get_loc(pd.Timestamp(last[rid]))
        # The engine's one critical "halted" alert marks the bar it saw the switch; each
        # order it was then refused adds a warning under the same rule.
        noticed = [e for e in events if e.rule == "kill_switch" and e.strategy == strategy
                   and e.severity == "critical"]
        assert len(noticed) == 1, noticed
        seen_at = DATES.get_loc(pd.Timestamp(noticed[0].at))
        # The bar in flight when the halt committed may finish; the next one is halted.
        assert at_halt < seen_at <= at_halt + 2, (at_halt, seen_at)
        after = [o for o in store.orders("shared", rid) if o.created_at >= DATES[at_halt + 2]]
        assert after, "the strategy kept asking to trade after the halt"
        assert all(o.status == "rejected" and "kill_switch" in (o.reason or "") for o in after)
        assert store.get_run(rid).status == "finished"
    store.close()
