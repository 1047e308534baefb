"""``tradelab dashboard``: serve the live Panel dashboard."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

import typer

from tradelab.cli._app import app, fail, open_jobs, reported_errors, warn_if_exposed


def _announcer(ready_fd: int | None) -> Callable[[str], None]:
    """What the server calls once it answers: a line on stderr, the URL on ``ready_fd``."""
    if ready_fd is not None:
        try:
            os.fstat(ready_fd)  # fail now, not after start-up, if it is not open
        except OSError:
            fail(f"--ready-fd {ready_fd}: not an open file descriptor")

    def ready(url: str) -> None:
        typer.echo(f"tradelab dashboard ready on {url}", err=True)
        if ready_fd is not None:
            # One line, then closed: a reader sees the URL, or end-of-file if we died first.
            # A reader that went away already (a pipe closed) is no reason to stop serving.
            with contextlib.suppress(OSError), os.fdopen(ready_fd, "w", closefd=True) as out:
                out.write(url + "\n")

    return ready


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
              show: bool = typer.Option(False, "--show", help="open a browser tab"),
              ready_fd: int | None = typer.Option(
                  None, "--ready-fd", min=0,
                  help="once the server answers, write its URL and a newline to this "
                       "inherited file descriptor and close it (for supervisors and tests)"),
              ) -> None:
    """Serve the live dashboard (log in with a `tradelab users` account)."""
    from tradelab.cli.auth_cmd import load_settings, open_store

    announce = _announcer(ready_fd)
    cfg = load_settings()
    section = getattr(cfg, "dashboard", None)  # the [dashboard] section, once config has it
    host = host or getattr(section, "host", None) or "127.0.0.1"
    port = port if port is not None else getattr(section, "port", None) or 5006
    poll_ms = poll_ms or getattr(section, "poll_ms", None) or 300
    account = account or getattr(section, "account", None)
    store = open_store(url, cfg)
    jobs = open_jobs(cfg, store, with_jobs)
    with reported_errors():
        from tradelab.app import build_dashboard_services, build_registry
        from tradelab.dashboard.server import serve

        services = build_dashboard_services(cfg, store, build_registry(cfg), jobs=jobs, dev=dev)
    warn_if_exposed(host)
    try:
        serve(services, host=host, port=port, poll_ms=poll_ms, account=account, show=show,
              on_ready=announce)
    finally:
        services.close()
