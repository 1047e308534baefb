"""structlog set-up: key/value or JSON lines on stderr, secrets redacted.

Logs go to stderr so that command output on stdout (tables, ``--json``) stays
machine-readable.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from tradelab.config import is_secret_name

REDACTED = "**********"


def redact_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor that masks values whose key names a secret."""
    for key in list(event):
        if key != "event" and is_secret_name(key) and event[key] is not None:
            event[key] = REDACTED
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
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
