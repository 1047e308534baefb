"""Capture structlog output as parsed JSON records (asserting on data, not wording)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from tradelab.monitor.logging import configure_logging


@contextmanager
def json_log_records() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    saved = structlog.get_config()
    buf = io.StringIO()
    configure_logging("DEBUG", json_logs=True, stream=buf)
    try:
        yield lambda: [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]
    finally:
        structlog.configure(**saved)
