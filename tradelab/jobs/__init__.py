"""Notebooks as jobs: the papermill runner, run records, and the trading-aware scheduler.

>>> svc = tradelab.app.build_jobs(load_config())                                   # doctest: +SKIP
>>> svc.runner.run(RunRequest("spx", Path("notebooks/03_live_job.ipynb"), {"duration": "90D"}))
"""

from __future__ import annotations

from tradelab._lazy import lazy_exports

_EXPORTS = {
    "JobRunner": "tradelab.jobs.runner", "RunRequest": "tradelab.jobs.runner",
    "JobsService": "tradelab.jobs.service",
    "JobSpec": "tradelab.jobs.settings", "JobsSettings": "tradelab.jobs.settings",
    "load_jobs": "tradelab.jobs.settings", "JobScheduler": "tradelab.jobs.scheduler",
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
