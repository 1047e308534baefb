"""The scheduler end to end: real APScheduler (job store in the database), real papermill,
notebook 03 with short parameters, and a notification received at a local HTTP endpoint.
Plus overlap policies and a kernel killed mid-run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.jobs_helpers import ROOT, TINY, in_background, kernels_of, wait_until
from tests.unit.notify.endpoints import HttpReceiver
from tradelab.jobs.runner import JobRunner
from tradelab.jobs.scheduler import JobScheduler
from tradelab.jobs.settings import JobSpec
from tradelab.notify import Channel, Notifier, StoreDeliveryLog, Templates
from tradelab.store import Store
from tradelab.store.jobs_repo import JobsRepo

pytestmark = pytest.mark.slow


@pytest.fixture()
def receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    yield r
    r.close()


@pytest.fixture()
def setup(tmp_path: Path, receiver: HttpReceiver) -> Iterator[tuple[Store, JobRunner, Notifier]]:
    url = f"sqlite:///{tmp_path / 'sched.db'}"
    store = Store(url)
    store.upgrade()
    notifier = Notifier([Channel("ops", receiver.url("ops"))], Templates(ROOT / "config" / "templates"),
                        delivery_log=StoreDeliveryLog(store), backoff=0.05)
    runner = JobRunner(store, tmp_path / "runs", notifier=notifier,
                       env={"TRADELAB__STORE__URL": url, "TRADELAB_HOME": str(ROOT),
                            "TRADELAB__CACHE__DIR": str(tmp_path / "cache")})
    yield store, runner, notifier
    notifier.close()
    store.close()


def _cron_in(seconds: int) -> str:
    at = datetime.now(UTC) + timedelta(seconds=seconds)
    return f"{at.second} {at.minute} {at.hour} * * *"


def test_a_scheduled_notebook_runs_is_recorded_archived_and_announced(
        setup: tuple[Store, JobRunner, Notifier], receiver: HttpReceiver) -> None:
    store, runner, notifier = setup
    spec = JobSpec(name="spx_paper", notebook=ROOT / "notebooks" / "03_live_job.ipynb",
                   cron=_cron_in(4), timezone="UTC", calendar="", max_runtime=300,
                   parameters={"strategy": "sma_cross", "params": {"fast": 5, "slow": 20},
                               "duration": "120D", "account": "sched"})
    sched = JobScheduler({"spx_paper": spec}, runner, store, scheduler_id="e2e")
    sched.start()
    try:
        stored = sched.next_fire_times()
        assert list(stored) == ["spx_paper"] and stored["spx_paper"] is not None
        done = wait_until(lambda: [r for r in runner.repo.runs("spx_paper") if r.status != "running"],
                          timeout=240, what="scheduled run finished")
    finally:
        sched.shutdown(grace=5)
    [rec] = done
    assert (rec.status, rec.trigger, rec.error) == ("succeeded", "schedule", None)
    assert rec.data_fingerprint is not None and rec.data_fingerprint.startswith("sha256:")
    assert rec.summary is not None and rec.summary["account"] == f"sched/{rec.id}"
    engine_run = store.get_run(rec.summary["engine_run_id"])
    assert engine_run is not None and engine_run.status == "finished"
    out = Path(rec.output_path)  # type: ignore[arg-type]
    assert out.is_file() and out.with_suffix(".html").is_file()
    assert out.parent.parent == runner.runs_dir / "spx_paper"
    assert notifier.flush(30)
    titles = [m["title"] for m in receiver.wait_for(1)]
    assert f"Job spx_paper succeeded (run {rec.id})" in titles
    [delivery] = [d for d in JobsRepo(store).deliveries(event_type="job_succeeded")]
    assert (delivery.status, delivery.reference) == ("sent", f"job_run:{rec.id}")


def test_a_killed_kernel_is_recorded_failed_and_notified(
        setup: tuple[Store, JobRunner, Notifier], receiver: HttpReceiver) -> None:
    store, runner, notifier = setup
    spec = JobSpec(name="doomed", notebook=TINY, cron="0 0 1 1 *", calendar="",
                   parameters={"mode": "kill"}, max_runtime=120)
    sched = JobScheduler({"doomed": spec}, runner, store, scheduler_id="kill")
    rec = sched.run_job("doomed", trigger="manual")
    assert rec is not None and rec.status == "failed" and "DeadKernelError" in (rec.error or "")
    assert notifier.flush(30)
    [msg] = receiver.wait_for(1)
    assert msg["title"] == f"Job doomed failed (run {rec.id})" and msg["type"] == "failure"
    assert "DeadKernelError" in msg["message"]


def _sleeper(name: str, overlap: str, sleep: float) -> JobSpec:
    return JobSpec(name=name, notebook=TINY, cron="0 0 1 1 *", calendar="", overlap=overlap,
                   parameters={"mode": "sleep", "sleep": sleep}, max_runtime=300)


def test_overlap_skip_records_a_skipped_run(setup: tuple[Store, JobRunner, Notifier]) -> None:
    store, runner, _ = setup
    sched = JobScheduler({"j": _sleeper("j", "skip", 600)}, runner, store, scheduler_id="skip")
    thread, out = in_background(lambda: sched.run_job("j"))
    first = wait_until(lambda: runner.repo.runs("j", limit=1), what="first run")[0]
    skipped = sched.run_job("j")
    assert skipped is not None and skipped.status == "skipped" and skipped.id != first.id
    sched.shutdown(grace=0)  # cancels the long run
    thread.join(60)
    assert out[0].status == "cancelled" and kernels_of(first.id) == []


def test_overlap_kill_cancels_the_running_one(setup: tuple[Store, JobRunner, Notifier]) -> None:
    store, runner, _ = setup
    sched = JobScheduler({"j": _sleeper("j", "kill", 600)}, runner, store, scheduler_id="kill2")
    thread, out = in_background(lambda: sched.run_job("j"))
    first = wait_until(lambda: runner.repo.runs("j", limit=1), what="first run")[0]
    wait_until(lambda: kernels_of(first.id), what="first kernel")
    sched.specs["j"] = _sleeper("j", "kill", 0.1)  # the replacement finishes quickly
    second = sched.run_job("j")
    thread.join(60)
    assert out[0].status == "cancelled"
    assert second is not None and second.status == "succeeded"
    assert second.started_at >= out[0].finished_at


def test_overlap_queue_runs_one_after_the_other(setup: tuple[Store, JobRunner, Notifier]) -> None:
    store, runner, _ = setup
    sched = JobScheduler({"j": _sleeper("j", "queue", 2)}, runner, store, scheduler_id="queue")
    thread, out = in_background(lambda: sched.run_job("j"))
    wait_until(lambda: runner.repo.runs("j", limit=1), what="first run")
    second = sched.run_job("j")
    thread.join(60)
    first = out[0]
    assert first.status == "succeeded" and second is not None and second.status == "succeeded"
    assert second.started_at >= first.finished_at
