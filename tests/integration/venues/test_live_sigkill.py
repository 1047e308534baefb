"""`tradelab live` against the Binance-protocol simulator, killed with SIGKILL at random
points and resumed: no order duplicated at the venue, none lost, store = venue, and the
final equity and fills equal an uninterrupted run's.

The venue's clock is the test's (``bar_seconds=0``): a bar closes only when the previous
one has been processed (the run's ``last_bar_time`` in the store, committed every bar),
so the uninterrupted and the interrupted run see the same bars at the same venue state.
The engine's feed polls the venue's klines over REST, so a bar closed while the engine
was down (or killed mid-bar) is delivered after the resume, exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tradelab.brokers.sim.harness import start_binance_sim

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
KEY, SECRET = "live-key-1", "live-secret-1"
WARM = 25  # bars the venue has closed before the engine starts (its first window)


@pytest.fixture(scope="module")
def bars() -> Any:
    from tradelab.data.sample import SampleSource

    frame = SampleSource().load("SPX")
    return frame.loc["2016-01-01":"2016-09-30"]


def _env(sim: Any, db: str) -> dict[str, str]:
    return {**os.environ, "TRADELAB_HOME": str(ROOT), "TRADELAB__LIVE__ENABLED": "true",
            "TRADELAB__LIVE__BASE_URL": sim.rest_url, "TRADELAB__LIVE__WS_URL": sim.ws_url,
            "TRADELAB__DATA__CCXT__BASE_URL": sim.rest_url, "TRADELAB__DATA__CCXT__WS_URL": sim.ws_url,
            "TRADELAB_CCXT_API_KEY": KEY, "TRADELAB_CCXT_SECRET": SECRET,
            "TRADELAB__FEEDS__CCXT_INTERVAL": "1d", "TRADELAB__FEEDS__CCXT_MODE": "rest",
            "TRADELAB__FEEDS__POLL_SECONDS": "0.05", "TRADELAB__ENGINE__FLUSH_EVERY": "1",
            "TRADELAB__ENGINE__LEASE_SECONDS": "5", "TRADELAB__LIVE__RECONCILE_SECONDS": "3600",
            "TRADELAB__CACHE__DIR": str(Path(db.removeprefix("sqlite:///")).parent / "cache"),
            "PYTHONUNBUFFERED": "1"}


def _start(env: dict[str, str], db: str, resume: int | None, first: str) -> subprocess.Popen[str]:
    # --start: the feed delivers from the first bar the test closes, however long the
    # process takes to come up (the venue's clock waits for the test anyway).
    cmd = [sys.executable, "-c", "from tradelab.cli import main; main()", "live", "sma_cross",
           "--broker", "ccxt", "--symbol", "SPX/USDT", "--source", "ccxt", "--feed", "ccxt",
           "--start", first, "--confirm", "--db", db, "-p", "fast=5", "-p", "slow=15",
           "--no-progress", "--json"]
    if resume is not None:
        cmd += ["--resume", str(resume)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _progress(path: Path) -> tuple[int | None, str | None]:
    if not path.exists():
        return None, None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
        try:
            row = conn.execute("SELECT id, last_bar_time FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        except sqlite3.OperationalError:  # not migrated yet
            return None, None
    return (row[0], row[1]) if row else (None, None)


def _wait_bar(path: Path, proc: subprocess.Popen[str], at: Any, timeout: float = 90.0) -> int:
    """Until the engine has committed bar ``at`` (the run id); fails if the engine died."""
    want = at.strftime("%Y-%m-%d")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run_id, last = _progress(path)
        if last is not None and last[:10] >= want:
            return int(run_id)  # type: ignore[arg-type]
        if proc.poll() is not None:
            raise AssertionError(f"engine exited {proc.returncode}: {proc.stderr.read()[-2000:]}")
        time.sleep(0.02)
    raise AssertionError(f"bar {want} not processed within {timeout}s")


def _session(bars: Any, tmp: Path, kills: set[int]) -> dict[str, Any]:
    db_path = tmp / "live.db"
    db = f"sqlite:///{db_path}"
    sim = start_binance_sim({"SPX/USDT": bars}, key=KEY, secret=SECRET, bar_seconds=0, start=WARM,
                            balances={"USDT": "100000"})
    try:
        env = _env(sim, db)
        first = bars.index[WARM].strftime("%Y-%m-%d")
        proc = _start(env, db, None, first)
        rnd = random.Random(7)
        restarts = 0
        # The venue starts with bars 0..WARM closed; the feed delivers from bar WARM.
        run_id = _wait_bar(db_path, proc, bars.index[WARM])
        # The venue shows the bar after the last closed one as forming, and a feed takes a
        # bar once it closed: the very last bar never closes, so it is not waited for.
        for i in range(WARM + 1, len(bars) - 1):
            sim.advance(1)  # closes bar i (orders sent on bar i - 1 fill at its open)
            if i in kills:
                time.sleep(rnd.uniform(0.0, 0.15))  # somewhere in the bar: deciding, sending, committing
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                proc.communicate()
                proc = _start(env, db, run_id, first)
                restarts += 1
            run_id = _wait_bar(db_path, proc, bars.index[i])
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        return {"sim_orders": sim.orders(), "run_id": run_id, "db": db, "restarts": restarts,
                "status": sim.status()}
    finally:
        sim.stop()


def _book(db: str, run_id: int) -> dict[str, Any]:
    from tradelab.store import Store

    store = Store(db)
    fills = [(f.client_order_id, f.side, f.quantity, f.price, f.fees, f.at)
             for f in store.fills("paper", run_id)]
    orders = {o.client_order_id: (o.status, o.filled_quantity) for o in store.orders("paper", run_id)}
    positions = {p.symbol: p.quantity for p in store.positions("paper") if p.quantity}
    account = store.get_account("paper")
    assert account is not None
    store.close()
    return {"fills": fills, "orders": orders, "positions": positions, "cash": account.cash}


def test_live_sigkill_at_random_points_resumes_to_the_uninterrupted_result(bars, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    clean = _session(bars, tmp_path / "a", set())
    points = set(random.Random(11).sample(range(WARM + 20, len(bars) - 6), 5))
    killed = _session(bars, tmp_path / "b", points)
    assert killed["restarts"] == 5
    a, b = _book(clean["db"], clean["run_id"]), _book(killed["db"], killed["run_id"])
    assert len(a["fills"]) >= 6, "the strategy must trade for the comparison to mean something"
    assert b["fills"] == a["fills"] and b["cash"] == a["cash"] and b["positions"] == a["positions"]
    for run in (clean, killed):
        ids = [o["clientOrderId"] for o in run["sim_orders"]]
        assert len(ids) == len(set(ids)), "an order was placed twice at the venue"
        book = _book(run["db"], run["run_id"])
        assert set(ids) == set(book["orders"]), "store and venue disagree on the orders"
        venue_filled = {o["clientOrderId"]: o["executedQty"] for o in run["sim_orders"]}
        assert {k: float(v[1]) for k, v in book["orders"].items()} == \
            {k: float(v) for k, v in venue_filled.items()}
