"""Settings → the services around the engine: notifier, data-quality gate, jobs, API, dashboard.

Like :mod:`tradelab.app.wiring` for the engine, this is where their concrete
parts are chosen; the packages themselves take them as arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradelab.config import Settings

if TYPE_CHECKING:
    from tradelab.store import Store


def build_notifier(settings: Settings, store: Store | None = None) -> Any:
    """A :class:`tradelab.notify.Notifier` for the configured channels (none when disabled).

    With a ``store`` (and ``[notify] record``), every delivery is recorded in it.
    """
    from tradelab.notify import notify_settings
    from tradelab.notify.channels import build_channels
    from tradelab.notify.deliveries import StoreDeliveryLog
    from tradelab.notify.notifier import Notifier
    from tradelab.notify.templates import Templates

    cfg = notify_settings(settings)
    channels = build_channels(cfg.channels, cfg.delivery_timeout) if cfg.enabled else []
    folder = settings.path(cfg.templates_dir) if hasattr(settings, "path") else cfg.templates_dir
    log = StoreDeliveryLog(store) if store is not None and cfg.record else None
    return Notifier(channels, Templates(folder if folder.is_dir() else None), delivery_log=log,
                    queue_size=cfg.queue_size, retries=cfg.retries, backoff=cfg.backoff,
                    max_backoff=cfg.max_backoff, shutdown_grace=cfg.shutdown_grace)


def build_gate(settings: Settings, store: Store | None = None, account: str | None = None,
               flush_seconds: float | None = None) -> Any:
    """The data-quality gate of ``[data.quality]`` (and ``[data] gap_factor``)."""
    from tradelab.data.quality.gate import MAX_FLUSH_SECONDS, QualityGate

    return QualityGate(settings.data.quality, store=store, account=account,
                       gap_factor=settings.data.gap_factor,
                       flush_seconds=MAX_FLUSH_SECONDS if flush_seconds is None else flush_seconds)


def build_metrics() -> Any:
    """The process's Prometheus metrics (one private registry)."""
    from tradelab.monitor.metrics import Metrics

    return Metrics()


def build_jobs(settings: Settings, db: str | None = None, jobs_file: Path | str | None = None,
               env: dict[str, str] | None = None) -> Any:
    """The job tools: store, notifier, metrics, runner and job definitions.

    ``db`` overrides ``[store] url``; the notebooks get it too
    (``TRADELAB__STORE__URL``) so engine runs land in the same database.
    ``jobs_file`` overrides ``[jobs] file``; ``env`` is extra kernel environment.
    """
    from tradelab.jobs.runner import JobRunner
    from tradelab.jobs.service import JobsService
    from tradelab.jobs.settings import jobs_settings, load_jobs
    from tradelab.store import open_store, store_url

    cfg = jobs_settings(settings)
    url = store_url(settings, db).render_as_string(hide_password=False)
    store = open_store(settings, db)
    metrics = build_metrics()
    notifier = build_notifier(settings, store)
    notifier.listeners.append(metrics.on_notification)
    kernel_env = {"TRADELAB_HOME": str(settings.home), "TRADELAB__STORE__URL": url, **(env or {})}
    runner = JobRunner(store, settings.path(cfg.runs_dir), settings=settings, notifier=notifier,
                       metrics=metrics, kernel_name=cfg.kernel_name, start_timeout=cfg.start_timeout,
                       html=cfg.html, env=kernel_env)
    specs = load_jobs(settings.path(jobs_file or cfg.file))
    return JobsService(settings, cfg, store, notifier, metrics, runner, specs)


def build_scheduler(jobs: Any, *, scheduler_id: str | None = None, threads: int | None = None) -> Any:
    """The trading-aware scheduler over the job tools ``jobs`` (:func:`build_jobs`)."""
    from tradelab.jobs.scheduler import JobScheduler

    options: dict[str, Any] = {}
    if scheduler_id is not None:
        options["scheduler_id"] = scheduler_id
    if threads is not None:
        options["threads"] = threads
    return JobScheduler(jobs.specs, jobs.runner, jobs.store, home=jobs.settings.home, **options)


def runner_jobs(settings: Settings, store: Store) -> Any:
    """Job triggers for the API and dashboard (``None``: they serve job history only).

    ``None`` too when the job tools fail to build (logged): a server without a
    runner still answers.
    """
    import structlog

    from tradelab.api.jobs import RunnerJobs

    try:
        # Same database as the server, whatever --url said.
        svc = build_jobs(settings, db=store.url.render_as_string(hide_password=False))
        scheduler = build_scheduler(svc, scheduler_id="tradelab-api")
    except Exception as exc:
        structlog.get_logger("tradelab.app").warning(
            "job runner unavailable; serving job history only", error=type(exc).__name__)
        return None
    return RunnerJobs(store, svc.specs,
                      lambda name, on_start: scheduler.run_job(name, "manual", on_start))


def build_api(settings: Settings, store: Store, registry: Any, *, jobs: Any = None, dev: bool = False,
              **options: Any) -> Any:
    """The REST API application (FastAPI) on ``store``, with the process's metrics
    (``options``: :func:`tradelab.api.app.create_app`'s, e.g. ``drift``, the drift reports
    of :func:`tradelab.app.root.drift_reports`)."""
    from tradelab.api.app import create_app

    return create_app(settings, store=store, registry=registry, metrics=build_metrics(), jobs=jobs,
                      dev=dev, **options)


def build_dashboard_services(settings: Settings, store: Store, registry: Any, *, jobs: Any = None,
                             dev: bool = False, secret: str | None = None) -> Any:
    """The dashboard's services (auth, control, sessions) on ``store``."""
    from tradelab.dashboard.services import open_services

    return open_services(settings, store=store, registry=registry, jobs=jobs, dev=dev, secret=secret)
