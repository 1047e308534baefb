"""Jobs through the API with a job-runner backend: list, trigger (202), history."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.unit.api.helpers import Harness, build
from tradelab.api.jobs import RunnerJobs
from tradelab.store import Store
from tradelab.store.jobs_repo import JobsRepo


@dataclass
class Spec:
    notebook: Path
    cron: str
    enabled: bool = True


class RecordingRunner:
    """Runs a "job" by recording a finished run in the store, like the real runner does."""

    def __init__(self, store: Store) -> None:
        self.repo = JobsRepo(store)
        self.done = threading.Event()

    def __call__(self, name: str, on_start) -> None:
        now = datetime.now(UTC)
        run_id = self.repo.start_run(job=name, notebook=f"notebooks/{name}.ipynb", parameters={},
                                     trigger="manual", code_version="sha256:x",
                                     notebook_sha256="x", started_at=now)
        on_start(run_id)
        self.repo.finish_run(run_id, "succeeded", finished_at=now)
        self.done.set()


@pytest.fixture()
def jh(store_url: str) -> Iterator[tuple[Harness, RecordingRunner]]:
    store = Store(store_url)
    store.upgrade()
    runner = RecordingRunner(store)
    jobs = RunnerJobs(store, {"nightly": Spec(Path("notebooks/nightly.ipynb"), "0 22 * * 1-5")},
                      runner)
    h = build(store_url, jobs=jobs)
    with h.client:
        yield h, runner
    jobs.close(wait=True)
    h.store.close()
    store.close()


def test_trigger_runs_the_job_and_history_shows_it(jh: tuple[Harness, RecordingRunner]) -> None:
    h, runner = jh
    listed = h.client.get("/jobs", headers=h.headers("viewer")).json()
    assert listed == [{"name": "nightly", "detail": {"notebook": "notebooks/nightly.ipynb",
                                                     "cron": "0 22 * * 1-5", "enabled": True}}]
    r = h.client.post("/jobs/nightly/trigger", headers=h.headers("trader"))
    assert r.status_code == 202 and r.json()["status"] == "started"
    run_id = r.json()["id"]
    assert runner.done.wait(10)
    deadline = time.monotonic() + 10
    while not (runs := h.client.get("/jobs/runs", headers=h.headers("viewer")).json()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert [(x["id"], x["job"], x["status"]) for x in runs] == [(run_id, "nightly", "succeeded")]
    assert h.client.post("/jobs/nope/trigger", headers=h.headers("trader")).status_code == 404
    r = h.client.post("/jobs/nightly/trigger", json={"parameters": {"symbol": "SPX"}},
                      headers=h.headers("trader"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.parameters"
    assert [a.subject for a in h.auth.repo.audit(event="job_triggered")] == ["nightly"]
