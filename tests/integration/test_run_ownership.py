"""A run has one owner and one history: SIGKILL at random points, concurrent resumes,
summaries and status after a resume (issue 11, items 3-5)."""

from __future__ import annotations

import random
import signal
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_durability import _assert_same_run, _engine_cmd, _finish, _wait_for
from tradelab.store import Store

pytestmark = pytest.mark.slow


def _start(url: str, account: str, *extra: str) -> tuple[subprocess.Popen, int]:
    proc = _engine_cmd(url, account, *extra)
    first = proc.stdout.readline()
    assert first.startswith("run_id="), first + proc.stderr.read()
    return proc, int(first.strip().split("=")[1])


@pytest.fixture()
def reference(tmp_path: Path) -> tuple[str, int]:
    """An uninterrupted run on account ``reference``: its URL and run id."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    code, _, err = _finish(_engine_cmd(url, "reference"))
    assert code == 0, err
    store = Store(url)
    run_id = store.runs("reference")[-1].id
    store.close()
    return url, run_id


def test_whole_order_history_survives_sigkill_at_random_points(reference: tuple[str, int]) -> None:
    url, ref_id = reference
    store = Store(url)
    total = len(store.fills("reference", ref_id))
    rng = random.Random(11)
    kill_at = sorted(rng.sample(range(4, total - 4), 5))  # fill counts after which to kill
    proc, run_id = _start(url, "victim", "--speed", "2500")
    for point in kill_at:
        _wait_for(lambda p=point: len(store.fills("victim", run_id)) >= p, f"{point} fills")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert store.get_run(run_id).status in ("running", "interrupted")
        proc = _engine_cmd(url, "victim", "--resume", str(run_id), "--speed", "2500")
    code, _, err = _finish(proc)
    assert code == 0, err
    # Every order's audit trail (new → submitted → filled ...) exactly once, as uninterrupted.
    _assert_same_run(store, "victim", run_id, "reference", ref_id)
    store.close()


def test_two_concurrent_resumes_one_runs_the_other_is_refused(reference: tuple[str, int]) -> None:
    url, ref_id = reference
    store = Store(url)
    proc, run_id = _start(url, "twice", "--speed", "2000")
    _wait_for(lambda: len(store.fills("twice", run_id)) >= 10, "some fills")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    a = _engine_cmd(url, "twice", "--resume", str(run_id))
    b = _engine_cmd(url, "twice", "--resume", str(run_id))
    (code_a, _, err_a), (code_b, _, err_b) = _finish(a), _finish(b)
    assert sorted([code_a, code_b]) == [0, 2], (err_a, err_b)
    refused = err_a if code_a == 2 else err_b
    assert f"run {run_id} is being run by another engine" in refused
    assert "Traceback" not in refused
    # One history: no duplicate snapshot, audit row or fill.
    _assert_same_run(store, "twice", run_id, "reference", ref_id)
    store.close()


def test_a_resumed_run_is_running_and_its_summary_covers_the_whole_run(
        reference: tuple[str, int]) -> None:
    url, ref_id = reference
    store = Store(url)
    proc, run_id = _start(url, "paused", "--speed", "1500")
    _wait_for(lambda: len(store.fills("paused", run_id)) >= 20, "20 fills")
    proc.send_signal(signal.SIGTERM)
    code, out, err = _finish(proc)
    assert code == 0 and "status=stopped" in out, err
    stopped = store.get_run(run_id)
    assert stopped.status == "stopped"
    resumed = _engine_cmd(url, "paused", "--resume", str(run_id), "--speed", "1500")
    _wait_for(lambda: store.get_run(run_id).last_bar_time > stopped.last_bar_time,
              "the resumed run to make progress")
    assert store.get_run(run_id).status == "running"  # not `stopped` while it trades
    code, out, err = _finish(resumed)
    assert code == 0, err
    final = store.get_run(run_id)
    assert final.summary["fills"] == len(store.fills("paused", run_id))
    assert final.summary["bars"] == len(store.equity_curve("paused", run_id))
    assert f"fills={final.summary['fills']}" in out  # what the process prints is the whole run
    _assert_same_run(store, "paused", run_id, "reference", ref_id)
    store.close()
