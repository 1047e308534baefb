"""Notebooks as jobs: the papermill runner, run records, and the trading-aware scheduler.

>>> svc = open_jobs(load_config())                                   # doctest: +SKIP
>>> svc.runner.run(RunRequest("spx", Path("notebooks/03_live_job.ipynb"), {"duration": "90D"}))
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "JobRunner": "tradelab.jobs.runner", "RunRequest": "tradelab.jobs.runner",
    "JobsService": "tradelab.jobs.service", "open_jobs": "tradelab.jobs.service",
    "JobSpec": "tradelab.jobs.settings", "JobsSettings": "tradelab.jobs.settings",
    "load_jobs": "tradelab.jobs.settings", "JobScheduler": "tradelab.jobs.scheduler",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # Lazy: tradelab.config imports this package's settings module, so the
    # package itself must not import the heavy (or config-importing) modules.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
