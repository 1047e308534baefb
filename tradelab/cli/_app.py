"""The shared typer application and helpers for command modules."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from typer.core import TyperGroup

from tradelab.errors import ConfigError, TradelabError

if TYPE_CHECKING:
    from tradelab.store import Store

#: The top-level help lists commands in the order of the loop they serve.
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Start", ("demo", "strategies")),
    ("Research", ("backtest", "sweep", "check", "data", "cache")),
    ("Trade", ("paper", "parity", "live", "broker", "risk")),
    ("Schedule and watch", ("run", "schedule", "jobs", "dashboard", "api", "notify")),
    ("Set up", ("config", "db", "users", "apikeys")),
    ("Test venues and feeds", ("venue-sim", "replay-server")),
)


class WorkflowGroup(TyperGroup):
    """The top-level command group: ``--help`` shows the commands in :data:`SECTIONS`, a
    section each (click lists them in the order the modules happen to register them)."""

    # (typer vendors its own click: its Context and HelpFormatter, hence Any)
    def format_commands(self, ctx: Any, formatter: Any) -> None:
        commands = {name: cmd for name in self.list_commands(ctx)
                    if (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden}
        if not commands:
            return
        width = max(len(name) for name in commands)  # one column across the sections
        limit = formatter.width - 6 - width
        listed = {name for _, names in SECTIONS for name in names}
        sections = [*SECTIONS, ("Other", tuple(n for n in commands if n not in listed))]
        for title, names in sections:
            rows = [(n.ljust(width), commands[n].get_short_help_str(limit))
                    for n in names if n in commands]
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


app = typer.Typer(
    cls=WorkflowGroup,
    name="tradelab",
    help="tradelab: research-to-live trading. Research in notebooks, then paper and live.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Help text names config sections as ``[data]``, ``[store]``, ...: no Rich markup,
    # which would take them for style tags and drop them (the whole command tree inherits this).
    rich_markup_mode=None,
)


@app.callback()
def _setup(verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging"),
           json_logs: bool = typer.Option(False, "--json-logs", help="JSON log lines on stderr")) -> None:
    """Configure logging before any command runs."""
    from tradelab.monitor.logging import configure_logging

    configure_logging("DEBUG" if verbose else "WARNING", json_logs=json_logs)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print an error line to stderr and exit non-zero."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn configuration and tradelab errors into one line each and a non-zero exit."""
    try:
        yield
    except ConfigError as exc:
        for line in exc.problems:
            typer.echo(f"config error: {line}", err=True)
        raise typer.Exit(2) from None
    except TradelabError as exc:
        fail(str(exc))


def warn_if_exposed(host: str) -> None:
    """Servers speak plain HTTP: say so when one listens beyond loopback."""
    if host not in ("127.0.0.1", "::1", "localhost"):
        typer.echo(f"warning: listening on {host}: put TLS (a reverse proxy) in front", err=True)


def open_jobs(cfg: Any, store: Store, enabled: bool) -> Any:
    """The job runner that the API and dashboard trigger jobs through (``None`` if off)."""
    if not enabled:
        return None
    from tradelab.app.services import runner_jobs

    return runner_jobs(cfg, store)


def settings() -> Any:
    import os

    from tradelab.config import CONFIG_FILE, find_home, load_config

    if not (os.environ.get("TRADELAB_HOME") or os.environ.get("TRADELAB_CONFIG")) \
            and not (find_home() / CONFIG_FILE).is_file():
        # Outside a project nothing is found (no strategies, no data) and caches would
        # be created in whatever folder this is: say where we looked and how to point us.
        fail(f"no tradelab project at or above {Path.cwd()} (looked for {CONFIG_FILE}): "
             "run inside a project, or set TRADELAB_HOME=/path/to/project "
             "(or TRADELAB_CONFIG=/path/to/tradelab.toml)")
    try:
        return load_config()
    except ConfigError as exc:
        for line in exc.problems:
            typer.echo(f"config error: {line}", err=True)
        raise typer.Exit(2) from None


def build_app() -> Any:
    from tradelab.app import build

    try:
        return build(settings())
    except TradelabError as exc:
        fail(str(exc))


def parse_params(items: list[str] | None) -> dict[str, str]:
    """``["fast=10", "slow=30"]`` → ``{"fast": "10", "slow": "30"}`` (typed later by Param)."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"--param {item!r}: expected NAME=VALUE")
        out[key.strip()] = value.strip()
    return out


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=str, indent=2) + "\n")
