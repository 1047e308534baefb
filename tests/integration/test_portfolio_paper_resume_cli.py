"""``tradelab paper PORTFOLIO --resume RUN``: a stopped paper portfolio run continues on its
replay with the convention stored with it, and ends equal to research; ``--resume`` with a
live ``--feed`` is refused by name (it used to be dropped without a word)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "var/numba-cache"))

import tradelab.cli.engine_cmd  # noqa: E402,F401  (registers paper)
from tradelab.cli._app import app  # noqa: E402
from tradelab.data.universe import align, load_universe  # noqa: E402
from tradelab.parity_portfolio import compare_portfolio  # noqa: E402
from tradelab.research.portfolio import backtest_portfolio  # noqa: E402

pytestmark = pytest.mark.slow

SPAN = ("2010-01-01", "2011-12-31")
STOP_AFTER = 105  # right after a bar that decided a rebalance: the resume takes it again


def _cli(env: dict[str, str], *args: str):
    from tradelab.monitor.logging import configure_logging

    try:
        return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    finally:
        configure_logging("WARNING")


def test_a_stopped_paper_portfolio_run_resumes_from_the_cli(environ: dict[str, str],
                                                            tmp_path: Path) -> None:
    from tradelab.app import build
    from tradelab.config import load_config

    env = {**environ, "TRADELAB__STORE__URL": f"sqlite:///{tmp_path / 'paper.db'}"}
    tl = build(load_config(environ=env, home=ROOT))
    ex = replace(tl.execution, fees=0.001)  # not the default: the resume must use it
    bars = load_universe("kopep", "sample", *SPAN)
    research = backtest_portfolio("pairs_kopep", panel=align(bars), execution=ex)
    first = tl.portfolio_engine("pairs_kopep", bars=bars, execution=ex, account="cli-resume")
    seen: list[int] = []

    def stop(_batch: object) -> None:
        seen.append(1)
        if len(seen) == STOP_AFTER:
            first.request_stop("test")

    part = first.run(on_bar=stop)
    assert part.stopped == "stopped" and len(part.equity_curve) == STOP_AFTER
    run = int(part.run_id)
    dates = ["--start", SPAN[0], "--end", SPAN[1]]
    refused = _cli(env, "paper", "pairs_kopep", *dates, "--account", "cli-resume",
                   "--resume", str(run), "--fees", "0.002")
    assert refused.exit_code == 2
    assert f"--fees 0.002: run {run} was started with --fees 0.001" in refused.output
    on_feed = _cli(env, "paper", "pairs_kopep", *dates, "--resume", str(run), "--feed", "poll")
    assert on_feed.exit_code == 2
    assert f"--resume {run}: a paper portfolio run resumes on its replay" in on_feed.output
    done = _cli(env, "paper", "pairs_kopep", *dates, "--account", "cli-resume",
                "--resume", str(run), "--json")
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    assert out["run_id"] == run
    assert out["timestamps"] == len(research.equity) - STOP_AFTER
    store = tl.store
    stored = compare_portfolio(research, store.fills("cli-resume", run),
                               [(p.at, float(p.equity))
                                for p in store.equity_curve("cli-resume", run)])
    assert stored.ok, stored.to_dict()
    assert len(store.fills("cli-resume", run)) == len(research.orders)
