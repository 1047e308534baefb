"""The drift report of a stored portfolio run (`tradelab parity --run RUN` on a pairs trade):
zero over its own bars, a costly venue's fills attributed to price, fees and sizing per
symbol, bars received differently from the source, and the CLI's exit codes. Real engine
runs of KO/PEP in a real SQLite store."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "var/numba-cache"))  # research imports vectorbt

from tradelab.cli import app as cli_app  # noqa: E402
from tradelab.drift_run import run_drift  # noqa: E402
from tradelab.store.run_bars_repo import run_bars  # noqa: E402

pytestmark = pytest.mark.slow
START, END = "2012-01-01", "2016-12-31"
EPS = 1e-6  # money: the engine books 10 decimals
COSTLY = {"slippage": 0.001, "fees": 0.001}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("drift_portfolio")
    return {"TRADELAB_HOME": str(ROOT), "TRADELAB__CACHE__DIR": str(tmp / "cache"),
            "PATH": os.environ.get("PATH", ""),
            "TRADELAB__STORE__URL": f"sqlite:///{tmp / 'drift.db'}"}


@pytest.fixture(scope="module")
def tl(env: dict[str, str]):
    from tradelab.app import build
    from tradelab.config import load_config

    return build(load_config(environ=env, home=ROOT))


def _run(tl, account: str, **kw) -> int:
    if "bars" not in kw:
        kw.update(start=START, end=END)
    engine = tl.portfolio_engine("pairs_kopep", account=account, **kw)
    return int(engine.run().run_id)


@pytest.fixture(scope="module")
def paper(tl) -> int:
    return _run(tl, "paper")


@pytest.fixture(scope="module")
def costly(tl) -> int:
    """Started with the [research] convention (stored with the run); its venue slipped and
    charged double fees."""
    return _run(tl, "costly", broker=tl.broker("paper", replace(tl.execution, **COSTLY),
                                               {"KO", "PEP"}))


def test_a_paper_portfolio_run_has_zero_drift_over_its_own_bars(tl, paper: int) -> None:
    rep = run_drift(tl, paper, store=tl.store)
    fills = tl.store.fills("paper", paper)
    assert rep.symbol == "KO,PEP" and rep.strategy == "pairs_kopep"
    assert len(rep.rows) == len(fills) > 20  # one fill per (bar, symbol, side) here
    assert {r.symbol for r in rep.rows} == {"KO", "PEP"}
    assert all(r.kind == "match" and r.cause == "none" for r in rep.rows)
    assert abs(rep.gap) < EPS and all(abs(v) < EPS for v in rep.by_cause.values())
    assert rep.initial_cash == tl.execution.cash and not rep.exceeded
    # every symbol's bars equal the source's: no data difference, no effect
    assert rep.data is not None and rep.data.error is None
    assert rep.data.compared == len(run_bars(tl.store, paper)) == 2 * rep.bars
    assert rep.data.differing == rep.data.missing == 0 and rep.data.effect == 0


def test_bars_a_portfolio_run_received_differently_are_data_differences(tl) -> None:
    bars = {s: tl.bars(s, source="sample", start=START, end=END).copy() for s in ("KO", "PEP")}
    bars["PEP"].iloc[300:340, :4] *= 0.95  # a bad stretch of one leg: the spread moves
    run_id = _run(tl, "baddata", bars=bars, source="sample")
    rep = run_drift(tl, run_id, store=tl.store)
    # the run is what research says over what the run received ...
    assert abs(rep.gap) < EPS and not rep.differences
    # ... and the data line says where that differs from the source, and what it cost
    assert rep.data is not None and rep.data.differing == 40 and rep.data.missing == 0
    assert all(e.startswith("PEP ") for e in rep.data.examples)
    assert rep.data.effect is not None and abs(rep.data.effect) > 1


def test_a_costly_venue_is_price_fees_and_sizing_per_symbol(tl, costly: int) -> None:
    rep = run_drift(tl, costly, store=tl.store)
    causes = rep.by_cause
    assert rep.gap < -1000 and rep.exceeded
    assert causes["price"] < 0 and causes["fees"] < 0 and causes["timing"] == 0
    # the same decisions (weights read prices, not cash): every trade is matched, and a
    # leg sized on less cash is a quantity difference
    assert all(r.kind == "match" for r in rep.rows) and causes["quantity"] != 0
    # equity is cash plus positions at the last closes: each trade's part is linear, so the
    # causes of all symbols add up to the gap (a leg sized on less cash included)
    assert abs(causes["other"]) < EPS
    for symbol in ("KO", "PEP"):
        assert sum(r.price for r in rep.rows if r.symbol == symbol) < 0
    same = run_drift(tl, costly, store=tl.store, execution=replace(tl.execution, **COSTLY))
    assert abs(same.gap) < EPS and not same.differences


def test_parity_run_of_a_portfolio_exit_codes(env: dict[str, str], paper: int, costly: int) -> None:
    def cli(*args: str):
        return CliRunner().invoke(cli_app, list(args), env=env)

    ok = cli("parity", "--run", str(paper), "--json")
    assert ok.exit_code == 0, ok.output
    body = json.loads(ok.stdout)
    assert body["symbol"] == "KO,PEP" and not body["exceeded"]
    assert {r["symbol"] for r in body["rows"]} == {"KO", "PEP"}
    bad = cli("parity", "--run", str(costly))
    assert bad.exit_code == 1 and "EXCEEDED" in bad.stdout
