"""structlog set-up: key/value or JSON lines on stderr, secrets redacted, ids bound.

Logs go to stderr so that command output on stdout (tables, ``--json``) stays
machine-readable.

Correlation ids (``run_id``, ``job``, ``job_run_id``, ``strategy``,
``client_order_id``) are bound with :func:`bind_ids` (``structlog.contextvars``)
and merged into every line logged inside the block, in this thread or task.
A notebook kernel started by a job runner is another process: it picks the
job's ids up from its environment with :func:`bind_from_env`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO, cast

from tradelab._lazy import defer_import

if "structlog" not in sys.modules:
    # structlog imports rich's console, traceback and pretty-printer at import, to
    # render exceptions: ~70 ms of every command, which mostly logs none. They load
    # when structlog first renders an exception (the real objects from then on).
    defer_import("rich.console", stand_ins=("Console",), importers=("structlog.",))
    defer_import("rich.traceback", stand_ins=("Traceback",), importers=("structlog.",))
    defer_import("rich.pretty")

import structlog  # (after the deferrals)

from tradelab.config import is_secret_name
from tradelab.monitor.redact import protect_logger, redact_value

REDACTED = "**********"
# Environment variables a job runner sets for the notebook kernel it starts.
ENV_IDS = {"TRADELAB_JOB": "job", "TRADELAB_JOB_RUN_ID": "job_run_id"}


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is *now* (pytest and Jupyter swap it; a
    reference captured at configure time would point at a closed stream later)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def redact_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor masking values whose key names a secret, and secrets inside values."""
    for key in list(event):
        value = event[key]
        if value is None:
            continue
        if key != "event" and is_secret_name(key):
            event[key] = REDACTED
        elif isinstance(value, str | dict | list | tuple):
            # Apprise URLs carry tokens in the URL itself: mask inside the text.
            event[key] = redact_value(value)
    return event


def configure_logging(level: str = "INFO", json_logs: bool = False, stream: Any = None) -> None:
    """Configure structlog once per process (idempotent; later calls replace the set-up)."""
    renderer: Any = (structlog.processors.JSONRenderer() if json_logs
                     else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,  # after format_exc_info: tracebacks can quote URLs too
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        # structlog annotates the file as TextIO but only calls write() and flush(),
        # which is all _CurrentStderr has.
        logger_factory=structlog.PrintLoggerFactory(stream or cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=False,
    )
    # apprise logs through the standard library; its messages may quote URLs.
    protect_logger("apprise")


@contextmanager
def bind_ids(**ids: Any) -> Iterator[None]:
    """Bind correlation ids for every log line inside the block (``None`` values are skipped).

    Examples
    --------
    >>> with bind_ids(job="nightly", job_run_id=12):   # doctest: +SKIP
    ...     log.info("job_started")                     # carries job and job_run_id
    """
    given = {k: v for k, v in ids.items() if v is not None}
    with structlog.contextvars.bound_contextvars(**given):
        yield


def bind_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Bind the job ids a runner passed to this process; returns what was bound."""
    env = os.environ if environ is None else environ
    found = {name: env[var] for var, name in ENV_IDS.items() if env.get(var)}
    if found:
        structlog.contextvars.bind_contextvars(**found)
    return found


def log_engine_events(bus: Any, logger: Any = None) -> None:
    """Log order transitions, risk alerts and kill-switch changes as structured lines.

    Each line carries ``client_order_id``, ``strategy`` and the engine's ``run_id``
    (once known), so an order can be followed across processes by grepping one id.
    """
    from tradelab.events import (
        EngineStarted,
        KillSwitchEngaged,
        KillSwitchReleased,
        OrderEvent,
        RiskAlert,
    )

    log = logger or structlog.get_logger("tradelab.engine.events")
    state: dict[str, str] = {}

    def started(ev: Any) -> None:
        state["run_id"] = ev.run_id
        log.info("engine_started", run_id=ev.run_id, account=ev.account)

    def order(ev: Any) -> None:
        o = ev.order
        log.info("order_transition", run_id=state.get("run_id"), client_order_id=ev.client_order_id,
                 strategy=getattr(o, "strategy", None), symbol=getattr(o, "symbol", None),
                 from_state=ev.from_state, to_state=ev.to_state, reason=ev.reason or None)

    def risk(ev: Any) -> None:
        log.warning("risk_alert", run_id=state.get("run_id"), account=ev.account, rule=ev.rule,
                    severity=ev.severity, strategy=ev.strategy, client_order_id=ev.client_order_id,
                    detail=ev.message)

    def kill(ev: Any) -> None:
        log.warning("kill_switch", run_id=state.get("run_id"), account=ev.account,
                    engaged=isinstance(ev, KillSwitchEngaged), reason=ev.reason, by=ev.by)

    bus.subscribe(EngineStarted, started)
    bus.subscribe(OrderEvent, order)
    bus.subscribe(RiskAlert, risk)
    bus.subscribe(KillSwitchEngaged, kill)
    bus.subscribe(KillSwitchReleased, kill)
