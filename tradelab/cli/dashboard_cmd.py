"""``tradelab dashboard``: serve the live Panel dashboard."""

from __future__ import annotations

import typer

from tradelab.cli._app import app, fail


@app.command("dashboard")
def dashboard(host: str | None = typer.Option(None, help="bind address (default: dashboard.host, "
                                                           "127.0.0.1)"),
              port: int | None = typer.Option(None, help="port (default: dashboard.port, 5006)"),
              url: str | None = typer.Option(None, "--url", help="store URL (default: store.url)"),
              account: str | None = typer.Option(None, help="account shown first "
                                                               "(default: engine.account)"),
              poll_ms: int | None = typer.Option(None, "--poll-ms", min=50, max=5000,
                                                 help="store poll period in milliseconds "
                                                      "(default: dashboard.poll_ms, 300)"),
              dev: bool = typer.Option(False, "--dev",
                                       help="without TRADELAB__AUTH__JWT_SECRET, generate an "
                                            "ephemeral one (logins die with the process)"),
              with_jobs: bool = typer.Option(True, "--jobs/--no-jobs",
                                             help="trigger jobs through tradelab.jobs"),
              show: bool = typer.Option(False, "--show", help="open a browser tab")) -> None:
    """Serve the live dashboard (log in with a `tradelab users` account)."""
    from tradelab.cli.auth_cmd import load_settings, open_store
    from tradelab.errors import ConfigError, TradelabError

    cfg = load_settings()
    section = getattr(cfg, "dashboard", None)  # the [dashboard] section, once config has it
    host = host or getattr(section, "host", None) or "127.0.0.1"
    port = port if port is not None else getattr(section, "port", None) or 5006
    poll_ms = poll_ms or getattr(section, "poll_ms", None) or 300
    account = account or getattr(section, "account", None)
    store = open_store(url, cfg)
    jobs = None
    if with_jobs:
        from tradelab.api.jobs import open_runner_jobs

        jobs = open_runner_jobs(cfg, store)
    try:
        from tradelab.dashboard.server import serve
        from tradelab.dashboard.services import open_services

        services = open_services(cfg, store=store, jobs=jobs, dev=dev)
    except ConfigError as exc:
        for line in exc.problems:
            typer.echo(f"config error: {line}", err=True)
        raise typer.Exit(2) from None
    except TradelabError as exc:
        fail(str(exc))
    if host not in ("127.0.0.1", "::1", "localhost"):
        typer.echo(f"warning: listening on {host}: put TLS (a reverse proxy) in front", err=True)
    typer.echo(f"tradelab dashboard on http://{host}:{port}/", err=True)
    try:
        serve(services, host=host, port=port, poll_ms=poll_ms, account=account, show=show)
    finally:
        services.close()
