"""A :class:`~tradelab.api.control.JobsBackend` over the notebook job runner (``tradelab.jobs``).

Triggering answers HTTP 202 as soon as the run is recorded, with its id (poll
``GET /jobs/runs`` for its status); the run executes on a small thread pool in
the API process, recorded in ``job_runs`` by the runner like a scheduled run.
A run still waiting behind another run of the same job (overlap ``queue``)
after ``start_wait`` seconds is answered ``queued``, without an id yet. Per-trigger parameter overrides are
refused for now: the scheduler's ``run_job`` runs a job with its configured
parameters only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

import structlog

from tradelab.api.control import StoreJobs
from tradelab.auth.errors import Invalid, NotFound

if TYPE_CHECKING:
    from tradelab.store import Store

log = structlog.get_logger("tradelab.api")


class RunnerJobs(StoreJobs):
    """Jobs from their specs, history from the store, triggers on a thread pool.

    Parameters
    ----------
    store
        The store holding ``job_runs``.
    specs
        Job name → spec (``tradelab.jobs.settings.JobSpec`` or anything with
        ``notebook``, ``cron`` and ``enabled`` attributes).
    run
        ``run(name, on_start)`` executes one manual run and calls ``on_start(run_id)``
        once it is recorded (e.g. ``JobScheduler.run_job``).
    workers
        Concurrent manual runs.
    start_wait
        Seconds a trigger waits for the run's id before answering ``queued``.
    """

    def __init__(self, store: Store, specs: Mapping[str, Any],
                 run: Callable[[str, Callable[[int], None]], Any], workers: int = 2,
                 start_wait: float = 5.0) -> None:
        super().__init__(store)
        self.specs = dict(specs)
        self._run = run
        self.start_wait = start_wait
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="api-job")

    def jobs(self) -> list[dict[str, Any]]:
        return [{"name": name, "detail": {"notebook": str(getattr(spec, "notebook", "")),
                                          "cron": getattr(spec, "cron", None),
                                          "enabled": bool(getattr(spec, "enabled", True))}}
                for name, spec in sorted(self.specs.items())]

    def trigger(self, name: str, parameters: dict[str, Any], by: str) -> dict[str, Any]:
        if name not in self.specs:
            raise NotFound(f"no job {name!r}; configured: {', '.join(sorted(self.specs)) or '(none)'}")
        if parameters:
            raise Invalid("per-trigger parameters are not supported yet: the job runs with its "
                          "configured parameters", "body.parameters")
        started: Future[int] = Future()
        self._pool.submit(self._safe_run, name, started)
        try:
            run_id = started.result(timeout=self.start_wait)
        except FutureTimeout:
            return {"id": "queued", "job": name, "status": "queued", "detail": {"by": by}}
        return {"id": run_id, "job": name, "status": "started", "detail": {"by": by}}

    def _safe_run(self, name: str, started: Future[int]) -> None:
        try:
            self._run(name, started.set_result)
        except Exception as exc:  # the runner records failures itself; never kill the pool
            log.error("job_trigger_failed", job=name, error=type(exc).__name__)

    def close(self, wait: bool = False) -> None:
        """Stop accepting triggers (running jobs finish unless the process exits)."""
        self._pool.shutdown(wait=wait)


__all__ = ["RunnerJobs"]
