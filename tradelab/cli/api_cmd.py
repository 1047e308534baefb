"""``tradelab api``: serve the REST API with uvicorn."""

from __future__ import annotations

import typer

from tradelab.cli._app import app, fail


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

    from tradelab.api.app import create_app
    from tradelab.auth.settings import api_settings
    from tradelab.cli.auth_cmd import load_settings, open_store
    from tradelab.errors import ConfigError, TradelabError
    from tradelab.monitor.logging import configure_logging

    cfg = load_settings()
    configure_logging(cfg.logging.level, json_logs=json_logs or cfg.logging.json_logs)
    settings_api = api_settings(cfg)
    store = open_store(url, cfg)
    jobs = None
    if with_jobs:
        from tradelab.api.jobs import open_runner_jobs

        jobs = open_runner_jobs(cfg, store)
    try:
        application = create_app(cfg, store=store, dev=dev, jobs=jobs)
    except ConfigError as exc:
        for line in exc.problems:
            typer.echo(f"config error: {line}", err=True)
        raise typer.Exit(2) from None
    except TradelabError as exc:
        fail(str(exc))
    bind_host = host or settings_api.host
    if bind_host not in ("127.0.0.1", "::1", "localhost"):
        typer.echo(f"warning: listening on {bind_host}: put TLS (a reverse proxy) in front", err=True)
    # Our middleware writes the access log (route templates, no query strings);
    # uvicorn's own would print raw paths.
    bind_port = port if port is not None else settings_api.port
    typer.echo(f"tradelab API on http://{bind_host}:{bind_port} (docs: /docs)", err=True)
    uvicorn.run(application, host=bind_host, port=bind_port,
                access_log=False, proxy_headers=settings_api.trust_forwarded,
                server_header=False, log_level="warning")
