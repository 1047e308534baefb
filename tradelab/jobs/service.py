"""Wiring for the job commands: store, notifier, metrics, runner and job definitions.

The composition root (``tradelab.app``) stays the place that chooses concrete
classes for the engine; this module does the same for the job tools, from the
same :class:`~tradelab.config.Settings`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradelab.jobs.runner import JobRunner
from tradelab.jobs.settings import JobSpec, JobsSettings, jobs_settings, load_jobs


@dataclass
class JobsService:
    """Everything the job commands need, built from one configuration."""

    settings: Any
    config: JobsSettings
    store: Any
    notifier: Any
    metrics: Any
    runner: JobRunner
    specs: dict[str, JobSpec]

    def close(self, timeout: float = 10.0) -> None:
        """Deliver pending notifications (bounded) and release the database."""
        self.notifier.close(timeout)
        self.store.close()


def store_url(settings: Any, override: str | None = None) -> str:
    """The store URL (``--db`` beats ``[store] url``), relative SQLite paths against ``home``."""
    from tradelab.store import store_url as resolve

    return resolve(settings, override).render_as_string(hide_password=False)


def open_jobs(settings: Any, db: str | None = None, jobs_file: Path | str | None = None,
              env: dict[str, str] | None = None) -> JobsService:
    """Build the job tools for ``settings``.

    Parameters
    ----------
    settings
        :class:`tradelab.config.Settings`.
    db
        Store URL overriding ``[store] url``; notebooks get it too
        (``TRADELAB__STORE__URL``) so engine runs land in the same database.
    jobs_file
        Overrides ``[jobs] file``.
    env
        Extra environment for notebook kernels.
    """
    from tradelab.monitor.metrics import Metrics
    from tradelab.notify import build_notifier
    from tradelab.store import open_store

    cfg = jobs_settings(settings)
    url = store_url(settings, db)
    store = open_store(settings, db)
    metrics = Metrics()
    notifier = build_notifier(settings, store)
    notifier.listeners.append(metrics.on_notification)
    kernel_env = {"TRADELAB_HOME": str(settings.home), "TRADELAB__STORE__URL": url, **(env or {})}
    runner = JobRunner(store, settings.path(cfg.runs_dir), settings=settings, notifier=notifier,
                       metrics=metrics, kernel_name=cfg.kernel_name, start_timeout=cfg.start_timeout,
                       html=cfg.html, env=kernel_env)
    specs = load_jobs(settings.path(jobs_file or cfg.file))
    return JobsService(settings, cfg, store, notifier, metrics, runner, specs)


def parse_value(text: str) -> Any:
    """A ``-p NAME VALUE`` value: JSON when it parses (numbers, booleans, lists, objects), else text."""
    try:
        return json.loads(text)
    except ValueError:
        return text
