"""`tradelab demo` (what `make demo` runs): research, the live-looking paper session, then a
live session through ccxt against the Binance-protocol simulator."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "var/numba-cache"))

import tradelab.cli.demo_cmd  # noqa: E402,F401  (registers the command)
from tradelab.cli._app import app  # noqa: E402
from tradelab.store import Store  # noqa: E402

pytestmark = pytest.mark.slow


def test_demo_runs_research_and_a_live_paper_session(tmp_path: Path) -> None:
    # Home in tmp_path (reports, the demo store), the shipped strategies from the project.
    env = {"TRADELAB_HOME": str(tmp_path), "TRADELAB__CACHE__DIR": str(tmp_path / "cache"),
           "TRADELAB__STRATEGIES__PATHS": json.dumps([str(ROOT / "strategies")]),
           "PATH": os.environ.get("PATH", "")}
    res = CliRunner().invoke(app, ["demo"], env=env, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "var/reports/demo.html").is_file()
    out = res.stdout
    feed = re.search(r"feed: delivered (\d+), backfilled (\d+), reconnects (\d+), stale \d+, "
                     r"rejected (\d+).*the server injected (\d+) malformed", out)
    assert feed is not None, out
    delivered, backfilled, reconnects, rejected, injected = map(int, feed.groups())
    assert delivered == 300 and reconnects == 2 and backfilled > 0
    assert rejected == injected > 0
    store = Store(f"sqlite:///{tmp_path / 'var/demo/live.db'}")
    run = store.runs("demo-live")[-1]
    assert run.status == "finished" and run.summary["bars"] == 300
    assert f"run {run.id} (finished) on account demo-live: 300 bars" in out
    # The live session through ccxt against the Binance-protocol simulator: the dropped
    # acknowledgement was resolved by asking the venue, the cut stream reconnected, no
    # order reached the venue twice, and the start reconciliation found the book right.
    venue = re.search(r"orders (\d+) \(at the venue: (\d+), none twice: (\w+)\)", out)
    assert venue is not None, out
    assert int(venue.group(1)) == int(venue.group(2)) >= 1 and venue.group(3) == "True"
    healed = re.search(r"resolved by asking the venue: (\d+); order-stream reconnects: (\d+)", out)
    assert healed is not None and int(healed.group(1)) == 1 and int(healed.group(2)) >= 1, out
    assert "reconciliation (start): ok" in out
    venue_store = Store(f"sqlite:///{tmp_path / 'var/demo/venue.db'}")
    assert venue_store.runs("demo-venue")[-1].mode == "live"
