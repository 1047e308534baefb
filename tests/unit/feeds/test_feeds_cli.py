"""``tradelab replay-server``: serves real bars from a data source; bad options fail fast."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

import tradelab.cli.feeds_cmd  # noqa: F401  (registers the command)
from tradelab.cli._app import app
from tradelab.feeds.websocket import WebsocketFeed

RUN = "import tradelab.cli.feeds_cmd; from tradelab.cli import app; app()"


def test_bad_options_fail_before_serving(environ: dict[str, str]) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["replay-server", "--speed", "fast"], env=environ)
    assert out.exit_code == 2 and "--speed" in out.output
    out = runner.invoke(app, ["replay-server", "--ticks-per-bar", "2"], env=environ)
    assert out.exit_code == 2


def test_serves_sample_spx_with_an_injected_drop(environ: dict[str, str], spx: pd.DataFrame,
                                                 project_root: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN, "replay-server", "--source", "sample", "--end",
         "1999-06-30", "--port", "0", "--drop-after", "20"],
        env=environ, cwd=project_root, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
        text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr or []],
                     daemon=True).start()
    try:
        url = None
        while url is None:
            try:
                line = lines.get(timeout=60)
            except queue.Empty:
                raise AssertionError("replay-server printed no address within 60 s") from None
            m = re.search(r"ws://127\.0\.0\.1:\d+", line)
            url = m.group(0) if m else None
        feed = WebsocketFeed(url, "SPX", backoff_base=0.01)
        got = [pd.Timestamp(b.time) for b in feed]
        want = spx[spx.index <= "1999-06-30"]
        assert got == list(want.index)
        assert feed.reconnects == 1
    finally:
        proc.terminate()
        proc.wait(10)
