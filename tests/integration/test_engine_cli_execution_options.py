"""A run remembers its execution options: `paper --resume` and `parity --run` use them.

The run is interrupted by the ``brittle`` strategy of ``test_engine_cli_failures`` (it
raises on the K-th evaluated bar while ``BRITTLE_AT=K`` is set), started with fees,
slippage, a fixed size in units, both sides and a borrow fee, and then resumed and
judged *without* those flags.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_engine_cli_failures import WINDOW, _trades
from tests.integration.test_engine_cli_run_options import _cli, _last_line, env  # noqa: F401
from tradelab.store import Store

pytestmark = pytest.mark.slow

EXEC = ["--fees", "0.001", "--slippage", "0.0005", "--size", "10", "--size-type", "amount",
        "--borrow-fee", "0.05"]
SIDES = ["--direction", "both"]


def test_resume_and_parity_use_the_stored_execution_and_refuse_another(env, tmp_path: Path) -> None:  # noqa: F811
    db = f"sqlite:///{tmp_path / 'engine.db'}"
    paper = ["paper", "brittle", *WINDOW, "--db", db, "--no-progress"]
    reference = _cli(env, *paper, "--account", "reference", *EXEC, *SIDES)
    assert reference.returncode == 0, reference.stderr
    failed = _cli(env, *paper, "--account", "resumed", *EXEC, *SIDES, brittle_at=400)
    assert failed.returncode != 0 and "halted: RuntimeError" in _last_line(failed)
    store = Store(db)
    run_id = store.runs("resumed")[-1].id
    crashed = store.get_run(run_id)
    assert crashed.execution is not None and {k: crashed.execution[k] for k in (
        "fees", "slippage", "size", "size_type", "borrow_fee")} == {
        "fees": 0.001, "slippage": 0.0005, "size": 10.0, "size_type": "amount", "borrow_fee": 0.05}

    # A flag that contradicts the stored convention: refused before anything changes.
    for flag, given, stored in (("--fees", "0.002", "--fees 0.001"),
                                ("--size-type", "percent", "--size-type amount"),
                                ("--fractional", None, "--whole")):
        refused = _cli(env, *paper, "--account", "resumed", "--resume", str(run_id), flag,
                       *([given] if given else []))
        assert refused.returncode == 2, refused.stderr
        typed = f"{flag} {given}" if given else flag
        assert _last_line(refused).startswith(
            f"error: {typed}: run {run_id} was started with {stored} (its execution options are "
            f"stored with it: drop {flag}, or start a new run)"), _last_line(refused)
    assert store.get_run(run_id).status == "failed" and store.get_run(run_id).owner is None

    # Without the flags (or with the same value) the run continues as it was started.
    resumed = _cli(env, *paper, "--account", "resumed", "--resume", str(run_id), "--size-type",
                   "amount", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["execution"]["fees"] == 0.001
    orders, fills = _trades(store, "resumed", run_id)
    assert (orders, fills) == _trades(store, "reference", store.runs("reference")[-1].id)
    last = crashed.last_bar_time
    assert last is not None
    later = [f for f in fills if f[0] > last]  # (at, side, quantity, price, fees)
    assert later and {q for _, _, q, _, _ in later} <= {10, 20}  # 10 units; a reversal 10 + 10
    sold = [f for f in later if f[1] == "sell"]  # a sell never covers: no borrow fee in it
    assert sold and all(float(fees) == pytest.approx(float(q * p) * 0.001, rel=1e-9)
                        for _, _, q, p, fees in sold)
    assert any(float(fees) > float(q * p) * 0.001 * 1.01 for _, side, q, p, fees in later
               if side == "buy")  # a cover carries its borrow fee

    # parity --run judges the run with its stored convention: the report the flags give.
    judged = _cli(env, "parity", "--run", str(run_id), "--db", db, "--json")
    flagged = _cli(env, "parity", "--run", str(run_id), "--db", db, "--json", *EXEC)
    assert judged.returncode == flagged.returncode == 0, judged.stderr + flagged.stderr
    assert json.loads(judged.stdout) == json.loads(flagged.stdout)
    trades = json.loads(judged.stdout)["trades"]  # every trade matches research's
    assert trades["run"] == trades["research"] > 20 and trades["kinds"] == {"match": trades["run"]}
    refused = _cli(env, "parity", "--run", str(run_id), "--db", db, "--fees", "0.002")
    assert refused.returncode == 2
    assert _last_line(refused).startswith(
        f"error: --fees 0.002: run {run_id} was started with --fees 0.001 (")
    store.close()
