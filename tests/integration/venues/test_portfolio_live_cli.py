"""``tradelab live`` with a portfolio strategy (issue 13): the CLI, in its own process,
against the Binance simulator, on the ``ccxt`` feed of two symbols polled from the
simulator's daily klines. The venue's clock is the test's (``bar_seconds=0``): a bar closes
only when the engine has committed the previous one (the run's ``last_bar_time``).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.integration.venues.test_portfolio_live import STAMPS, START, SYMBOLS, _bars
from tradelab.brokers.sim.harness import start_binance_sim

ROOT = Path(__file__).resolve().parents[3]
KEY, SECRET = "live-pf-key-1", "live-pf-secret-1"

STRATEGY = '''
import numpy as np
import pandas as pd

from tradelab.strategy.portfolio import PortfolioStrategy


class Swing(PortfolioStrategy):
    name = "swing_cli_test"
    universe = ("ETH/USDT", "BTC/USDT")
    rebalance = 4

    def weights(self, panel):
        phase = (np.asarray(panel.index.dayofyear) // 4) % 2  # swaps every decision
        rows = [(0.6, 0.3) if p == 0 else (0.2, 0.7) for p in phase]
        return pd.DataFrame(rows, index=panel.index, columns=list(self.universe))
'''


def _env(sim: Any, db: str, tmp: Path) -> dict[str, str]:
    folder = tmp / "strategies"
    folder.mkdir()
    (folder / "swing_cli_test.py").write_text(STRATEGY)
    return {**os.environ, "TRADELAB_HOME": str(ROOT), "TRADELAB__LIVE__ENABLED": "true",
            "TRADELAB__LIVE__BASE_URL": sim.rest_url, "TRADELAB__LIVE__WS_URL": sim.ws_url,
            "TRADELAB__DATA__CCXT__BASE_URL": sim.rest_url, "TRADELAB__DATA__CCXT__WS_URL": sim.ws_url,
            "TRADELAB_CCXT_API_KEY": KEY, "TRADELAB_CCXT_SECRET": SECRET,
            "TRADELAB__FEEDS__CCXT_INTERVAL": "1d", "TRADELAB__FEEDS__CCXT_MODE": "rest",
            "TRADELAB__FEEDS__POLL_SECONDS": "0.05", "TRADELAB__ENGINE__FLUSH_EVERY": "1",
            "TRADELAB__LIVE__RECONCILE_SECONDS": "3600",
            "TRADELAB__STRATEGIES__PATHS": json.dumps([str(ROOT / "strategies"), str(folder)]),
            "TRADELAB__CACHE__DIR": str(tmp / "cache"), "PYTHONUNBUFFERED": "1"}


def _last_bar(path: Path) -> str | None:
    if not path.exists():
        return None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
        try:
            row = conn.execute("SELECT last_bar_time FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        except sqlite3.OperationalError:  # not migrated yet
            return None
    return row[0] if row else None


def _wait_bar(path: Path, proc: subprocess.Popen[str], want: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = _last_bar(path)
        if last is not None and last[:10] >= want:
            return
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr is not None else ""
            raise AssertionError(f"engine exited {proc.returncode}: {err[-3000:]}")
        time.sleep(0.02)
    raise AssertionError(f"time stamp {want} not processed within {timeout}s")


@pytest.mark.slow
def test_live_cli_trades_a_portfolio_at_the_venue_sells_first(tmp_path: Path) -> None:
    bars = _bars(freq="1D")
    index = bars[SYMBOLS[0]].index
    db_path = tmp_path / "live.db"
    sim = start_binance_sim(bars, key=KEY, secret=SECRET, bar_seconds=0, start=START)
    try:
        env = _env(sim, f"sqlite:///{db_path}", tmp_path)
        fmt = "%Y-%m-%d"
        cmd = [sys.executable, "-c", "from tradelab.cli import main; main()", "live",
               "swing_cli_test", "--broker", "ccxt", "--symbols", ",".join(SYMBOLS),
               "--source", "ccxt", "--feed", "ccxt", "--start", index[START].strftime(fmt),
               "--end", index[START + STAMPS - 1].strftime(fmt), "--account", "live",
               "--confirm", "--force", "--db", f"sqlite:///{db_path}", "--json"]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        _wait_bar(db_path, proc, index[START].strftime(fmt))
        for i in range(START + 1, START + STAMPS):
            sim.advance(1)  # closes bar i: the orders sent on bar i - 1 fill at its open
            _wait_bar(db_path, proc, index[i].strftime(fmt))
        sim.advance(1)  # the last bar's close is the feed's end
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        at_venue = {o["clientOrderId"]: o for o in sim.orders()}
    finally:
        sim.stop()
    got = json.loads(out)
    assert got["broker"] == "ccxt" and got["status"] == "finished"
    assert got["sizing"].startswith("decision closes") and not got["rebalance_unfinished"]
    assert got["rebalances_done"] == 3 and got["timestamps"] == STAMPS
    assert [r["ok"] for r in got["reconciliations"]][:1] == [True]

    from tradelab.store import Store

    store = Store(f"sqlite:///{db_path}")
    try:
        stored = {o.client_order_id: o for o in store.orders("live", got["run_id"])}
        fills = store.fills("live", got["run_id"])
    finally:
        store.close()
    assert set(stored) == set(at_venue) and len(stored) >= 5
    assert all(o["status"] == "FILLED" for o in at_venue.values())
    assert len(fills) == got["fills"] == len(got["orders"])
    decided: dict[Any, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for cid, o in stored.items():
        decided[o.created_at][o.side].append(at_venue[cid])
    assert len(decided) == 3
    assert sum(1 for d in decided.values() if d["sell"]) == 2
    for d in decided.values():
        if d["sell"]:
            assert max(s["updateTime"] for s in d["sell"]) < min(b["time"] for b in d["buy"])


@pytest.mark.slow
def test_live_cli_resumes_a_portfolio_killed_between_a_decisions_sells_and_buys(
        tmp_path: Path) -> None:
    """``tradelab live PORTFOLIO --resume RUN``: the process is SIGKILLed once it committed
    the second decision's time stamp (its sell sent, its buys waiting for the sell to fill);
    the sell fills while it is down. The resumed process books that fill (the start's
    reconciliation), sends the decision's buys once, and finishes the run: store = venue,
    no client id twice at the venue, every sell filled before its decision's buys left."""
    bars = _bars(freq="1D")
    index = bars[SYMBOLS[0]].index
    db_path = tmp_path / "live.db"
    sim = start_binance_sim(bars, key=KEY, secret=SECRET, bar_seconds=0, start=START)
    fmt = "%Y-%m-%d"
    second = START + 4  # the second decision's time stamp

    def start(*extra: str) -> subprocess.Popen[str]:
        cmd = [sys.executable, "-c", "from tradelab.cli import main; main()", "live",
               "swing_cli_test", "--broker", "ccxt", "--symbols", ",".join(SYMBOLS),
               "--source", "ccxt", "--feed", "ccxt", "--start", index[START].strftime(fmt),
               "--end", index[START + STAMPS - 1].strftime(fmt), "--account", "live",
               "--confirm", "--force", "--db", f"sqlite:///{db_path}", "--json", *extra]
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    try:
        env = {**_env(sim, f"sqlite:///{db_path}", tmp_path), "TRADELAB__ENGINE__LEASE_SECONDS": "5"}
        proc = start("--fees", "0.0004")  # stored with the run: the resume below repeats no flag
        _wait_bar(db_path, proc, index[START].strftime(fmt))
        for i in range(START + 1, second + 1):
            sim.advance(1)
            _wait_bar(db_path, proc, index[i].strftime(fmt))
        proc.send_signal(signal.SIGKILL)  # the sell was sent on this time stamp, unfilled
        proc.communicate(timeout=30)
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as conn:
            run_id = conn.execute("SELECT id FROM runs ORDER BY id DESC LIMIT 1").fetchone()[0]
            left = conn.execute("SELECT side, status FROM orders WHERE created_at LIKE ?",
                                (index[second].strftime(fmt) + "%",)).fetchall()
        assert [side for side, _ in left] == ["sell"]
        sim.advance(1)  # while the engine is down: the sell fills
        proc = start("--resume", str(run_id))
        _wait_bar(db_path, proc, index[second + 1].strftime(fmt))
        for i in range(second + 2, START + STAMPS):
            sim.advance(1)
            _wait_bar(db_path, proc, index[i].strftime(fmt))
        sim.advance(1)  # the last bar's close is the feed's end
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        venue = sim.orders()
    finally:
        sim.stop()
    got = json.loads(out)
    assert got["status"] == "finished" and got["run_id"] == run_id
    assert got["rebalances_done"] == 2 and not got["rebalance_unfinished"]
    assert got["reconciliations"][0]["ok"]

    from tradelab.store import Store

    store = Store(f"sqlite:///{db_path}")
    try:
        stored = {o.client_order_id: o for o in store.orders("live", run_id)}
        run = store.get_run(run_id)
    finally:
        store.close()
    assert run is not None and run.execution is not None and run.execution["fees"] == 0.0004
    ids = [o["clientOrderId"] for o in venue]
    assert len(ids) == len(set(ids)), "an order was placed twice at the venue"
    at_venue = {o["clientOrderId"]: o for o in venue}
    assert set(stored) == set(at_venue) and all(o["status"] == "FILLED" for o in venue)
    assert all(stored[c].filled_quantity == Decimal(o["executedQty"]) for c, o in at_venue.items())
    decided: dict[Any, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for cid, o in stored.items():
        decided[o.created_at][o.side].append(at_venue[cid])
    assert len(decided) == 3 and sum(1 for d in decided.values() if d["sell"]) == 2
    for d in decided.values():
        assert d["buy"]
        if d["sell"]:
            assert max(s["updateTime"] for s in d["sell"]) < min(b["time"] for b in d["buy"])


def test_live_cli_refuses_a_portfolio_on_a_replay(environ: dict[str, str], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import tradelab.cli.live_cmd  # noqa: F401  (registers the command)
    from tradelab.cli._app import app

    env = {**environ, "TRADELAB__LIVE__ENABLED": "true",
           "TRADELAB__STORE__URL": f"sqlite:///{tmp_path / 'live.db'}"}
    got = CliRunner().invoke(app, ["live", "pairs_kopep", "--broker", "ccxt", "--symbols",
                                   "KO,PEP", "--source", "sample", "--start", "2010-01-01",
                                   "--end", "2010-12-31", "-p", "window=40", "-p",
                                   "z_window=10", "--confirm"], env=env)
    assert got.exit_code == 2, got.output
    assert "--feed replay: a portfolio trades at a real venue on a live feed" in \
        " ".join(got.output.split())
