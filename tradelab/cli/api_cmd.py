"""``tradelab api``: serve the REST API with uvicorn."""

from __future__ import annotations

import typer

from tradelab.cli._app import app, open_jobs, reported_errors, warn_if_exposed


@app.command("api")
def api(host: str | None = typer.Option(None, help="bind address (default: api.host, 127.0.0.1)"),
        port: int | None = typer.Option(None, help="port (default: api.port, 8000)"),
        url: str | None = typer.Option(None, "--url", help="store URL (default: store.url)"),
        dev: bool = typer.Option(False, "--dev",
                                 help="without TRADELAB__AUTH__JWT_SECRET, generate an ephemeral "
                                      "one (tokens die with the process)"),
        json_logs: bool = typer.Option(False, "--json-logs", help="JSON log lines"),
        with_jobs: bool = typer.Option(True, "--jobs/--no-jobs",
                                       help="serve job triggers through tradelab.jobs")) -> None:
    """Serve the REST API (OpenAPI docs at /docs). Needs TRADELAB__AUTH__JWT_SECRET."""
    import uvicorn

    from tradelab.app import build_api, build_registry, drift_reports
    from tradelab.auth.settings import api_settings
    from tradelab.cli.auth_cmd import load_settings, open_store
    from tradelab.monitor.logging import configure_logging

    cfg = load_settings()
    configure_logging(cfg.logging.level, json_logs=json_logs or cfg.logging.json_logs)
    settings_api = api_settings(cfg)
    store = open_store(url, cfg)
    jobs = open_jobs(cfg, store, with_jobs)
    with reported_errors():
        application = build_api(cfg, store, build_registry(cfg), dev=dev, jobs=jobs,
                                drift=drift_reports(cfg, store))
    bind_host = host or settings_api.host
    warn_if_exposed(bind_host)
    # Our middleware writes the access log (route templates, no query strings);
    # uvicorn's own would print raw paths.
    bind_port = port if port is not None else settings_api.port
    typer.echo(f"tradelab API on http://{bind_host}:{bind_port} (docs: /docs)", err=True)
    uvicorn.run(application, host=bind_host, port=bind_port,
                access_log=False, proxy_headers=settings_api.trust_forwarded,
                server_header=False, log_level="warning")
