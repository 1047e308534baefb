"""Wiring for the job commands: store, notifier, metrics, runner and job definitions.

The composition root (``tradelab.app``) stays the place that chooses concrete
classes for the engine; this module does the same for the job tools, from the
same :class:`~tradelab.config.Settings`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tradelab.jobs.runner import JobRunner
from tradelab.jobs.settings import JobSpec, JobsSettings

if TYPE_CHECKING:
    from tradelab.store import Store


@dataclass
class JobsService:
    """Everything the job commands need, built from one configuration."""

    settings: Any
    config: JobsSettings
    store: Store
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


def parse_value(text: str) -> Any:
    """A ``-p NAME VALUE`` value: JSON when it parses (numbers, booleans, lists, objects), else text."""
    try:
        return json.loads(text)
    except ValueError:
        return text
