"""A run remembers its trade options: `paper --resume` and `parity --run` use them.

The run is interrupted by the ``brittle`` strategy of ``test_engine_cli_failures``
(it raises on the K-th evaluated bar while ``BRITTLE_AT=K`` is set), started with
``--direction both --sl --tp``, and then resumed and judged *without* those flags.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_engine_cli_failures import BRITTLE, ROOT, WINDOW, _trades
from tradelab.store import Store

pytestmark = pytest.mark.slow

SIDES = ["--direction", "both", "--sl", "0.03", "--tp", "0.06"]


@pytest.fixture()
def env(environ: dict[str, str], tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "brittle.py").write_text(BRITTLE)
    return {**environ, "PYTHONPATH": str(ROOT), "NUMBA_CACHE_DIR": str(ROOT / "var/numba-cache"),
            "TRADELAB__STORE__URL": f"sqlite:///{tmp_path / 'default.db'}",
            "TRADELAB__STRATEGIES__PATHS": json.dumps([str(ROOT / "strategies"), str(folder)])}


def _cli(env: dict[str, str], *args: str, brittle_at: int | None = None) -> subprocess.CompletedProcess:
    run_env = {**env, **({"BRITTLE_AT": str(brittle_at)} if brittle_at is not None else {})}
    return subprocess.run([sys.executable, "-c", "from tradelab.cli import main; main()", *args],
                          cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=300)


def _last_line(res: subprocess.CompletedProcess) -> str:
    return [line for line in res.stderr.splitlines() if line.strip()][-1]


def test_resume_and_parity_use_the_stored_options_and_refuse_other_ones(env, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'engine.db'}"
    paper = ["paper", "brittle", *WINDOW, "--db", db, "--no-progress"]
    reference = _cli(env, *paper, "--account", "reference", *SIDES)
    assert reference.returncode == 0, reference.stderr
    failed = _cli(env, *paper, "--account", "resumed", *SIDES, brittle_at=400)
    assert failed.returncode != 0 and "halted: RuntimeError" in _last_line(failed)
    store = Store(db)
    run_id = store.runs("resumed")[-1].id
    assert store.get_run(run_id).trade() == {"direction": "both", "sl": 0.03, "tp": 0.06,
                                             "trail": None, "time_stop": None}

    # A flag that contradicts the stored options: refused before anything changes.
    for flag, given, stored in (("--sl", "0.05", "--sl 0.03"), ("--direction", "long", "--direction both"),
                                ("--trail", "0.05", "no --trail")):
        refused = _cli(env, *paper, "--account", "resumed", "--resume", str(run_id), flag, given)
        assert refused.returncode == 2, refused.stderr
        assert _last_line(refused).startswith(
            f"error: {flag} {given}: run {run_id} was started with {stored} ("), _last_line(refused)
    assert store.get_run(run_id).status == "failed"

    # Without the flags (or with the same values) the run continues as it was started.
    resumed = _cli(env, *paper, "--account", "resumed", "--resume", str(run_id), "--sl", "0.03")
    assert resumed.returncode == 0, resumed.stderr
    ref_id = store.runs("reference")[-1].id
    orders, fills = _trades(store, "resumed", run_id)
    assert (orders, fills) == _trades(store, "reference", ref_id)

    # parity --run judges the run with its stored options: the same report as with the flags.
    judged = _cli(env, "parity", "--run", str(run_id), "--db", db, "--json")
    flagged = _cli(env, "parity", "--run", str(run_id), "--db", db, "--json", *SIDES)
    assert judged.returncode == flagged.returncode == 0, judged.stderr + flagged.stderr
    assert json.loads(judged.stdout) == json.loads(flagged.stdout)
    trades = json.loads(judged.stdout)["trades"]  # research with shorts and stops: every trade matches
    assert trades["run"] == trades["research"] > 20 and trades["kinds"] == {"match": trades["run"]}
    refused = _cli(env, "parity", "--run", str(run_id), "--db", db, "--tp", "0.1")
    assert refused.returncode == 2
    assert _last_line(refused).startswith(f"error: --tp 0.1: run {run_id} was started with --tp 0.06")
    store.close()
