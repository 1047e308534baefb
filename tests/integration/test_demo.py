"""`tradelab demo` (what `make demo` runs): research, then the live-looking paper session."""

from __future__ import annotations

import json
import os
import re
import time
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
    started = time.perf_counter()
    res = CliRunner().invoke(app, ["demo"], env=env, catch_exceptions=False)
    elapsed = time.perf_counter() - started
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
    assert elapsed < 60   # `make demo` must stay quick (about 13 s on a laptop)
