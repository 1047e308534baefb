"""A small synchronous in-process event bus.

``subscribe(EventType, handler)`` then ``publish(event)``. Delivery is FIFO:
an event published from inside a handler is queued and delivered after the
current one has reached all its handlers, so causally later events are always
handled later. A handler that raises is logged (structlog) and counted in
:attr:`EventBus.errors`; the other handlers and the loop carry on.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger("tradelab.bus")

Handler = Callable[[Any], None]


class EventBus:
    """Subscribe by event type (a handler for a base class receives subclasses too)."""

    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = {}
        self._resolved: dict[type, tuple[Handler, ...]] = {}
        self._queue: deque[Any] = deque()
        self._draining = False
        self.errors: Counter[str] = Counter()
        self.published: Counter[str] = Counter()

    def subscribe(self, event_type: type, handler: Handler) -> None:
        """Call ``handler(event)`` for every published instance of ``event_type``."""
        self._handlers.setdefault(event_type, []).append(handler)
        self._resolved.clear()  # subscriptions change rarely; recompute lazily

    def _for(self, event_type: type) -> tuple[Handler, ...]:
        found = self._resolved.get(event_type)
        if found is None:
            found = tuple(h for klass in reversed(event_type.__mro__)
                          for h in self._handlers.get(klass, ()))
            self._resolved[event_type] = found
        return found

    def has_subscribers(self, event_type: type) -> bool:
        """Whether a published ``event_type`` would reach any handler."""
        return bool(self._for(event_type))

    def wants(self, event_type: type) -> bool:
        """Whether to build and publish an ``event_type`` now.

        For hot loops: ``if bus.wants(Kind): bus.publish(Kind(...))``. With no handler
        it counts the event in :attr:`published` exactly as publishing it would (that
        is all publishing one to nobody does) and returns False, so the caller skips
        constructing it. Resolved once per type until subscriptions change.
        """
        if self._for(event_type):
            return True
        self.published[event_type.__name__] += 1
        return False

    def publish(self, event: Any) -> None:
        """Deliver ``event`` (and everything it triggers) before returning, in FIFO order."""
        self._queue.append(event)
        if self._draining:
            return
        self._draining = True
        try:
            while self._queue:
                ev = self._queue.popleft()
                kind = type(ev)
                self.published[kind.__name__] += 1
                for handler in self._for(kind):
                    try:
                        handler(ev)
                    except Exception as exc:  # isolation: one bad handler never stops the loop
                        name = getattr(handler, "__qualname__", repr(handler))
                        self.errors[name] += 1
                        log.error("handler_failed", handler=name, event_type=kind.__name__,
                                  error=f"{type(exc).__name__}: {exc}")
        finally:
            self._draining = False

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())
