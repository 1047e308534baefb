"""Jinja2 templates per event type: ``<templates_dir>/<event_type>.j2``.

Each template defines two blocks, ``title`` and ``body``::

    {% block title %}Filled {{ side }} {{ quantity }} {{ symbol }}{% endblock %}
    {% block body %}...{% endblock %}

Undefined variables are errors (a typo must not send a half-empty alert), but
an alert is never lost to a template problem: the notification falls back to a
plain rendering of its context and the problem is logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import structlog

log = structlog.get_logger("tradelab.notify")
SUFFIX = ".j2"


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered notification."""

    title: str
    body: str
    template: str | None  # None when the fallback was used


class Templates:
    """Loads and renders the per-event templates of one folder.

    Parameters
    ----------
    directory
        Folder holding ``<event_type>.j2`` files; ``None`` renders every event
        with the fallback.
    """

    def __init__(self, directory: Path | str | None) -> None:
        self.directory = Path(directory) if directory is not None else None
        loader = (jinja2.FileSystemLoader(str(self.directory)) if self.directory is not None
                  else jinja2.DictLoader({}))
        # Plain text for chat and mail bodies: no HTML autoescaping.
        self.env = jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined,
                                      autoescape=False, trim_blocks=True, lstrip_blocks=True,
                                      keep_trailing_newline=False)
        self.env.filters["money"] = _money

    def available(self) -> list[str]:
        """Event types that have a template."""
        return sorted(n.removesuffix(SUFFIX) for n in self.env.list_templates()
                      if n.endswith(SUFFIX))

    def render(self, event_type: str, context: Mapping[str, Any]) -> Rendered:
        """Render ``event_type`` with ``context`` (falls back to plain text on any problem)."""
        name = event_type + SUFFIX
        try:
            template = self.env.get_template(name)
        except jinja2.TemplateNotFound:
            return fallback(event_type, context)
        try:
            ctx = template.new_context(dict(context))
            title = "".join(template.blocks["title"](ctx)).strip()
            body = "".join(template.blocks["body"](ctx)).strip()
        except (jinja2.TemplateError, KeyError, TypeError, ValueError) as exc:
            log.error("template_failed", template=name, error=f"{type(exc).__name__}: {exc}")
            return fallback(event_type, context)
        return Rendered(title, body, name)

    def check(self) -> dict[str, str]:
        """Compile every template; ``{name: error}`` for those that do not (``{}`` when all do)."""
        problems: dict[str, str] = {}
        for name in self.env.list_templates():
            try:
                template = self.env.get_template(name)
                missing = {"title", "body"} - set(template.blocks)
                if missing:
                    problems[name] = f"missing block(s): {', '.join(sorted(missing))}"
            except jinja2.TemplateError as exc:
                problems[name] = f"{type(exc).__name__}: {exc}"
        return problems


def fallback(event_type: str, context: Mapping[str, Any]) -> Rendered:
    """A plain rendering: the event type as title and ``key: value`` lines as body."""
    severity = context.get("severity", "")
    title = f"[{severity}] {event_type}" if severity else event_type
    body = "\n".join(f"{k}: {v}" for k, v in context.items() if not k.startswith("_"))
    return Rendered(title, body, None)


def _money(value: Any, digits: int = 2) -> str:
    try:
        return f"{float(value):,.{digits}f}"
    except (TypeError, ValueError):
        return str(value)
