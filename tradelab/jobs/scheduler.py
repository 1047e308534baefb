"""The job scheduler: APScheduler 3 with its job store in the trading database.

Jobs come from ``config/jobs.toml`` and are synced into the store's
``apscheduler_jobs`` table on start (added, replaced, and removed when no
longer configured). Each fire goes through the job's overlap policy:

``skip``   a run of the job is already going: record a ``skipped`` run, do nothing
``queue``  wait for the running one to finish, then run
``kill``   cancel the running one (its run is recorded ``cancelled``), then run

Missed fire times (scheduler down or busy) follow APScheduler's
``misfire_grace_time`` and ``coalesce`` per job (see :mod:`tradelab.jobs.settings`).
One scheduler process per database: APScheduler 3 does not coordinate several
schedulers sharing a job store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from tradelab.jobs.calendar import SessionCronTrigger
from tradelab.jobs.runner import JobRunner, RunRequest
from tradelab.jobs.settings import JobSpec
from tradelab.jobs.versioning import sha256_file
from tradelab.monitor.logging import bind_ids
from tradelab.store.jobs_models import SCHEDULER_TABLE
from tradelab.store.jobs_repo import JobRunRecord

if TYPE_CHECKING:
    from tradelab.store import Store

log = structlog.get_logger("tradelab.jobs.scheduler")
# Persisted jobs name their target as text (``tradelab.jobs.scheduler:fire``) and
# carry only the scheduler id and job name; the live JobScheduler is found here.
_ACTIVE: dict[str, JobScheduler] = {}


def fire(scheduler_id: str, job: str) -> None:
    """APScheduler's entry point for a due job (runs in the scheduler's thread pool)."""
    scheduler = _ACTIVE.get(scheduler_id)
    if scheduler is None:
        log.error("scheduler_not_running", scheduler_id=scheduler_id, job=job)
        return
    scheduler.run_job(job, trigger="schedule")


def build_trigger(spec: JobSpec) -> SessionCronTrigger:
    """The cron trigger of a job, skipping closed sessions of its calendar."""
    return SessionCronTrigger(spec.cron, spec.timezone, spec.calendar, spec.sessions)


class JobScheduler:
    """Runs configured notebook jobs on their schedules.

    Parameters
    ----------
    specs
        Jobs by name (from :func:`tradelab.jobs.settings.load_jobs`).
    runner
        Executes and records runs.
    store
        The store whose database also holds APScheduler's job table.
    home
        Relative notebook paths are resolved against it.
    """

    def __init__(self, specs: Mapping[str, JobSpec], runner: JobRunner, store: Store, *,
                 home: Path | str = ".", scheduler_id: str = "tradelab", threads: int = 4) -> None:
        self.specs = dict(specs)
        self.runner, self.store = runner, store
        self.home = Path(home)
        self.scheduler_id = scheduler_id
        self._lock = threading.Lock()
        self._running: dict[str, list[threading.Event]] = {}
        self._job_locks: dict[str, threading.Lock] = {}
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=store.engine, tablename=SCHEDULER_TABLE)},
            executors={"default": ThreadPoolExecutor(threads)},
            timezone=UTC)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Register this scheduler, sync the configured jobs into the store and start firing."""
        if _ACTIVE.get(self.scheduler_id) not in (None, self):
            raise RuntimeError(f"a scheduler with id {self.scheduler_id!r} already runs here")
        _ACTIVE[self.scheduler_id] = self
        self.scheduler.start(paused=True)
        self.sync()
        self.scheduler.resume()
        log.info("scheduler_started", jobs=sorted(self.specs), scheduler_id=self.scheduler_id)

    def sync(self) -> None:
        """Make the stored jobs match the configuration."""
        wanted = {name for name, spec in self.specs.items() if spec.enabled}
        for job in self.scheduler.get_jobs():
            if job.id not in wanted:
                job.remove()
        for name in sorted(wanted):
            spec = self.specs[name]
            self.scheduler.add_job(
                fire, trigger=build_trigger(spec), args=[self.scheduler_id, name], id=name, name=name,
                replace_existing=True, misfire_grace_time=spec.misfire_grace_time,
                coalesce=spec.coalesce,
                # Overlap is decided by our policy, not by APScheduler dropping fires.
                max_instances=64)

    def shutdown(self, grace: float = 30.0) -> None:
        """Stop firing, give running jobs ``grace`` seconds, then cancel them and wait."""
        if self.scheduler.running:
            self.scheduler.pause()
        deadline = threading.Event()
        timer = threading.Timer(grace, deadline.set)
        timer.start()
        try:
            while self.running_jobs() and not deadline.is_set():
                deadline.wait(0.1)
        finally:
            timer.cancel()
        with self._lock:
            for events in self._running.values():
                for ev in events:
                    ev.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        if _ACTIVE.get(self.scheduler_id) is self:
            del _ACTIVE[self.scheduler_id]
        log.info("scheduler_stopped", scheduler_id=self.scheduler_id)

    def running_jobs(self) -> dict[str, int]:
        """Job name → number of runs in progress (or waiting) in this process."""
        with self._lock:
            return {k: len(v) for k, v in self._running.items() if v}

    def next_fire_times(self) -> dict[str, datetime | None]:
        """Next fire time per stored job."""
        return {job.id: job.next_run_time for job in self.scheduler.get_jobs()}

    # -- running -----------------------------------------------------------------------
    def request(self, name: str, trigger: str) -> RunRequest:
        """The run request for job ``name``."""
        spec = self.specs[name]
        notebook = spec.notebook if spec.notebook.is_absolute() else self.home / spec.notebook
        return RunRequest(name, notebook, dict(spec.parameters), trigger, spec.max_runtime,
                          spec.cell_timeout, spec.retries, spec.retry_backoff)

    def run_job(self, name: str, trigger: str = "manual",
                on_start: Callable[[int], None] | None = None) -> JobRunRecord | None:
        """Run job ``name`` now under its overlap policy; ``None`` when superseded.

        ``on_start(run_id)`` is called when the run (or its ``skipped`` record) is stored.
        """
        spec = self.specs.get(name)
        if spec is None:
            raise KeyError(f"unknown job {name!r}; configured: {', '.join(sorted(self.specs))}")
        cancel = threading.Event()
        with self._lock:
            running = self._running.setdefault(name, [])
            if running and spec.overlap == "skip":
                busy = len(running)
                cancel = None  # type: ignore[assignment]
            else:
                if running and spec.overlap == "kill":
                    for ev in running:
                        ev.set()
                running.append(cancel)
                job_lock = self._job_locks.setdefault(name, threading.Lock())
        if cancel is None:
            skipped = self._skip(name, trigger, busy)
            if skipped is not None and on_start is not None:
                on_start(skipped.id)
            return skipped
        try:
            with job_lock, bind_ids(job=name):
                if cancel.is_set():  # killed by a newer fire while queued
                    return None
                return self.runner.run(self.request(name, trigger), cancel, on_start)
        except Exception as exc:
            log.error("job_error", job=name, error=f"{type(exc).__name__}: {exc}")
            return None
        finally:
            with self._lock:
                self._running[name].remove(cancel)

    def _skip(self, name: str, trigger: str, busy: int) -> JobRunRecord | None:
        req = self.request(name, trigger)
        now = datetime.now(UTC)
        try:
            nb_hash = sha256_file(req.notebook)
        except OSError:
            nb_hash = ""
        repo = self.runner.repo
        run_id = repo.start_run(job=name, notebook=str(req.notebook), parameters=dict(req.parameters),
                                trigger=trigger, code_version=f"sha256:{nb_hash}",
                                notebook_sha256=nb_hash, started_at=now, status="skipped")
        repo.update_run(run_id, finished_at=now,
                        error=f"skipped: {busy} run(s) of {name} still in progress (overlap=skip)")
        log.warning("job_skipped", job=name, job_run_id=run_id, running=busy)
        if self.runner.metrics is not None:
            self.runner.metrics.job_finished(name, "skipped", 0.0)
        return repo.get_run(run_id)
