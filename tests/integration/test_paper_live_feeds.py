"""`tradelab paper --feed ...` end to end: a faulty websocket replay and a polled CSV file.

The live runs must trade exactly like a clean replay of the same real SPX bars.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "var/numba-cache"))

import tradelab.cli.engine_cmd  # noqa: E402,F401  (registers the commands)
from tradelab.cli._app import app  # noqa: E402
from tradelab.data.sample import SampleSource  # noqa: E402
from tradelab.feeds.replay_server import Faults, ReplayServer  # noqa: E402

N_BARS = 300


@pytest.fixture()
def source() -> pd.DataFrame:
    return SampleSource().load("SPX").iloc[:N_BARS]


@pytest.fixture()
def cli(environ: dict[str, str], tmp_path: Path):
    runner = CliRunner()
    base = {**environ, "TRADELAB__STORE__URL": f"sqlite:///{tmp_path / 'default.db'}",
            "TRADELAB__FEEDS__BACKOFF_BASE": "0.01"}

    def invoke(*args: str, env: dict[str, str] | None = None):
        from tradelab.monitor.logging import configure_logging

        try:
            return runner.invoke(app, list(args), env={**base, **(env or {})},
                                 catch_exceptions=False)
        finally:  # the command bound logging to the runner's stream, closed now
            configure_logging("WARNING")

    return invoke


@pytest.fixture()
def server(source: pd.DataFrame) -> Iterator[ReplayServer]:
    faults = Faults(seed=5, drop_after=(70, 120), gap_on_drop=6, malformed=0.03, duplicate=0.03)
    srv = ReplayServer({"SPX": source}, mode="live", faults=faults, heartbeat=0.2).start()
    yield srv
    srv.stop()


def summary(output: str) -> tuple[int, str, str]:
    bars = int(re.search(r": (\d+) bars", output).group(1))   # type: ignore[union-attr]
    equity = re.search(r"equity ([\d,.]+)", output).group(1)  # type: ignore[union-attr]
    trades = re.search(r"fills (\d+)", output).group(1)       # type: ignore[union-attr]
    return bars, equity, trades


def test_paper_over_a_faulty_websocket_trades_like_a_clean_replay(
        cli, server: ReplayServer, source: pd.DataFrame, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'live.db'}"
    live = cli("paper", "sma_cross", "--feed", server.url, "--source", "sample", "--symbol", "SPX",
               "--db", db, "--no-progress")
    assert live.exit_code == 0, live.output
    replay = cli("paper", "sma_cross", "--source", "sample", "--symbol", "SPX",
                 "--end", f"{source.index[-1]:%Y-%m-%d}", "--db", db + "-replay",
                 "--no-progress")
    assert replay.exit_code == 0, replay.output
    assert summary(live.stdout) == summary(replay.stdout)
    assert summary(live.stdout)[0] == N_BARS and int(summary(live.stdout)[2]) > 0
    feed_line = re.search(r"feed: delivered (\d+), backfilled (\d+), reconnects (\d+), "
                          r"stale \d+, rejected (\d+)", live.stdout)
    assert feed_line is not None, live.stdout
    delivered, backfilled, reconnects, rejected = map(int, feed_line.groups())
    malformed = sum(n for k, n in server.injected.items() if k.startswith("malformed:"))
    assert delivered == N_BARS and reconnects == 2 and backfilled >= 12
    assert rejected == malformed > 0


def test_paper_polling_a_file_source(cli, source: pd.DataFrame, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    frame = source.iloc[:120]
    pd.DataFrame({"Date": frame.index.strftime("%Y-%m-%d"), "Open": frame["open"],
                  "High": frame["high"], "Low": frame["low"], "Close": frame["close"],
                  "Adj Close": frame["close"], "Volume": frame["volume"]}).to_csv(
        folder / "SPX.csv", index=False, float_format="%.17g")
    env = {"TRADELAB__DATA__FILE__ROOT": str(folder)}
    first, last = f"{frame.index[0]:%Y-%m-%d}", f"{frame.index[-1]:%Y-%m-%d}"
    db = f"sqlite:///{tmp_path / 'poll.db'}"
    polled = cli("paper", "sma_cross", "--feed", "poll", "--source", "file", "--symbol", "SPX",
                 "--start", first, "--end", last, "--db", db, "--no-progress", env=env)
    assert polled.exit_code == 0, polled.output
    replay = cli("paper", "sma_cross", "--source", "file", "--symbol", "SPX", "--end", last,
                 "--db", db + "-replay", "--no-progress", env=env)
    assert replay.exit_code == 0, replay.output
    assert summary(polled.stdout) == summary(replay.stdout)
    assert summary(polled.stdout)[0] == 120
    assert "feed: delivered 120, backfilled 0, reconnects 0" in polled.stdout


def test_paper_rejects_an_unknown_feed(cli, tmp_path: Path) -> None:
    res = cli("paper", "sma_cross", "--feed", "carrier-pigeon", "--db",
              f"sqlite:///{tmp_path / 'x.db'}", "--no-progress")
    assert res.exit_code == 2
    assert "carrier-pigeon" in res.output
