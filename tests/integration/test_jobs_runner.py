"""The papermill runner with real kernels: records, archive, retries, timeout, cancel, dead kernel, replay."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from tests.integration.jobs_helpers import TINY, Collect, in_background, kernels_of, wait_until
from tradelab.jobs.runner import JobRunner, RunRequest
from tradelab.monitor.metrics import Metrics
from tradelab.store import Store

pytestmark = pytest.mark.slow


@pytest.fixture()
def runner(tmp_path: Path) -> JobRunner:
    store = Store(f"sqlite:///{tmp_path / 'jobs.db'}")
    store.upgrade()
    return JobRunner(store, tmp_path / "runs", notifier=Collect(), metrics=Metrics())


def test_a_successful_run_is_recorded_archived_and_replayable(runner: JobRunner) -> None:
    rec = runner.run(RunRequest("tiny", TINY, {"value": 5}))
    assert (rec.status, rec.attempts, rec.error, rec.trigger) == ("succeeded", 1, None, "manual")
    assert rec.data_fingerprint == "tiny:5" and rec.summary is not None and rec.summary["value"] == 5
    assert rec.code_version.startswith(("git:", "sha256:")) and len(rec.notebook_sha256) == 64
    folder = Path(rec.output_path).parent  # type: ignore[arg-type]
    assert folder.parent == runner.runs_dir / "tiny"
    assert {p.name for p in folder.iterdir()} >= {"input.ipynb", "params.json", "output.ipynb",
                                                  "output.html", "result.json", "executor.log"}
    assert json.loads((folder / "params.json").read_text()) == {"value": 5}
    out = json.loads(Path(rec.output_path).read_text())  # type: ignore[arg-type]
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in out["cells"])
    assert runner.notifier.sent[-1][0] == "job_succeeded"
    assert runner.metrics.value("tradelab_job_runs_total", {"job": "tiny", "status": "succeeded"}) == 1

    again = runner.replay(rec.id)
    assert (again.status, again.trigger, again.replay_of, again.parameters) == (
        "succeeded", "replay", rec.id, {"value": 5})
    assert again.summary["replay"] == {"of": rec.id, "notebook_matches": True,  # type: ignore[index]
                                       "strategy_matches": True, "data_matches": True}


def test_a_failing_notebook_is_retried_then_recorded_failed(runner: JobRunner) -> None:
    rec = runner.run(RunRequest("tiny", TINY, {"mode": "fail", "value": 9}, retries=1, retry_backoff=0.05))
    assert (rec.status, rec.attempts) == ("failed", 2)
    assert rec.error is not None and rec.error.startswith("RuntimeError: tiny job failed on purpose")
    folder = Path(rec.output_path).parent  # type: ignore[arg-type]
    assert (folder / "output.attempt-1.ipynb").is_file()
    event, ctx, _ = runner.notifier.sent[-1]
    assert (event, ctx["run_id"], ctx["status"], ctx["attempts"]) == ("job_failed", rec.id, "failed", 2)


def test_a_dead_kernel_fails_the_run(runner: JobRunner) -> None:
    rec = runner.run(RunRequest("tiny", TINY, {"mode": "kill"}))
    assert rec.status == "failed" and rec.error is not None and "DeadKernelError" in rec.error
    assert kernels_of(rec.id) == []


def test_a_run_past_its_max_runtime_is_killed_with_its_kernel(runner: JobRunner) -> None:
    rec = runner.run(RunRequest("tiny", TINY, {"mode": "sleep", "sleep": 600}, max_runtime=8))
    assert (rec.status, rec.error) == ("timed_out", "timed out after 8s")
    assert kernels_of(rec.id) == []
    assert runner.notifier.sent[-1][1]["status"] == "timed_out"


def test_cancellation_stops_the_run_cleanly(runner: JobRunner) -> None:
    cancel = threading.Event()
    thread, out = in_background(
        lambda: runner.run(RunRequest("tiny", TINY, {"mode": "sleep", "sleep": 600}), cancel))
    running = wait_until(lambda: runner.repo.runs("tiny", limit=1), what="run recorded")[0]
    wait_until(lambda: len(kernels_of(running.id)) >= 2, what="kernel started")
    cancel.set()
    thread.join(60)
    assert not thread.is_alive()
    [rec] = out
    assert (rec.status, rec.error) == ("cancelled", "cancelled")
    assert kernels_of(rec.id) == []


def test_secrets_a_notebook_prints_are_masked_in_its_archive(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'jobs.db'}")
    store.upgrade()
    secret = "tiny-s3cret-value-0042"
    runner = JobRunner(store, tmp_path / "runs", env={"TINY_API_TOKEN": secret})
    rec = runner.run(RunRequest("tiny", TINY, {"mode": "leak", "value": 3}))
    assert rec.status == "succeeded"
    folder = Path(rec.output_path).parent  # type: ignore[arg-type]
    archive = {name: (folder / name).read_text() for name in ("output.ipynb", "output.html",
                                                              "executor.log")}
    out = json.loads(archive["output.ipynb"])  # still a valid notebook
    printed = "".join("".join(o.get("text", "")) for c in out["cells"] for o in c.get("outputs", []))
    assert "token ****" in printed                    # the print happened, masked
    assert all(secret not in text for text in archive.values())


def test_an_unknown_parameter_fails_the_run(runner: JobRunner) -> None:
    rec = runner.run(RunRequest("tiny", TINY, {"valeu": 5}))
    assert rec.status == "failed" and rec.attempts == 1
    assert rec.error == "unknown parameter(s) valeu; the notebook takes: mode, sleep, value"
