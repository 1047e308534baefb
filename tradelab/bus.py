"""A small synchronous in-process event bus with *steps* and *observers*.

Two kinds of handler, declared explicitly when subscribing:

* **Steps** (:meth:`EventBus.step`) carry a guarantee: the write-ahead commit of
  an order, the risk decision, sending to the broker, booking a fill into the
  portfolio. They run first, in the order of their ``stage`` (lower first,
  subscription order within a stage). A step that raises stops that event's
  delivery: no later step and no observer sees it, so an order whose row could
  not be committed is never sent. Publishing then finishes the queue and raises
  :class:`StepFailed` to the publisher, which decides what the failure means
  (the engine halts the run after the current bar).
* **Observers** (:meth:`EventBus.subscribe`) only watch: metrics, notifications,
  the dashboard. One that raises is logged and counted in :attr:`EventBus.errors`;
  the other handlers and the loop carry on.

Delivery is FIFO: an event published from inside a handler is queued and
delivered after the current one has reached all its handlers, so causally later
events are always handled later.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import structlog

from tradelab.errors import TradelabError

log = structlog.get_logger("tradelab.bus")

Handler = Callable[[Any], None]

#: Stages of the order pipeline's steps, in the order they must run.
STAGE_RECORD = 5      # note the event for the store (in memory; risk's reservation reads it)
STAGE_RISK = 10       # decide (approve / deny)
STAGE_DURABLE = 20    # commit what must survive a crash (the order's write-ahead row)
STAGE_SEND = 30       # act outside the process (the broker)
STAGE_BOOK = 40       # apply the outcome to in-memory state (portfolio)


class StepFailed(TradelabError):
    """A step handler raised: the event's pipeline stopped there.

    Attributes
    ----------
    handler
        Qualified name of the step that failed.
    event
        The event it was handling.
    cause
        The exception it raised (also chained as ``__cause__``).
    """

    def __init__(self, handler: str, event: Any, cause: BaseException) -> None:
        super().__init__(f"{handler} failed on {type(event).__name__}: {type(cause).__name__}: {cause}")
        self.handler, self.event, self.cause = handler, event, cause


class EventBus:
    """Subscribe by event type (a handler for a base class receives subclasses too)."""

    def __init__(self) -> None:
        self._steps: dict[type, list[tuple[int, int, Handler]]] = {}
        self._handlers: dict[type, list[Handler]] = {}
        self._resolved: dict[type, tuple[tuple[Handler, ...], tuple[Handler, ...]]] = {}
        self._queue: deque[Any] = deque()
        self._draining = False
        self._seq = 0
        self.errors: Counter[str] = Counter()
        self.published: Counter[str] = Counter()

    def step(self, event_type: type, handler: Handler, *, stage: int) -> None:
        """Register a guarantee-carrying ``handler``; its failure stops the event (see module doc)."""
        self._seq += 1
        self._steps.setdefault(event_type, []).append((stage, self._seq, handler))
        self._resolved.clear()

    def subscribe(self, event_type: type, handler: Handler) -> None:
        """Observe every published instance of ``event_type`` (failures are isolated)."""
        self._handlers.setdefault(event_type, []).append(handler)
        self._resolved.clear()  # subscriptions change rarely; recompute lazily

    def _for(self, event_type: type) -> tuple[tuple[Handler, ...], tuple[Handler, ...]]:
        found = self._resolved.get(event_type)
        if found is None:
            mro = list(reversed(event_type.__mro__))
            steps = sorted((s for klass in mro for s in self._steps.get(klass, ())),
                           key=lambda s: (s[0], s[1]))
            found = (tuple(h for _, _, h in steps),
                     tuple(h for klass in mro for h in self._handlers.get(klass, ())))
            self._resolved[event_type] = found
        return found

    def has_subscribers(self, event_type: type) -> bool:
        """Whether a published ``event_type`` would reach any handler."""
        steps, observers = self._for(event_type)
        return bool(steps or observers)

    def wants(self, event_type: type) -> bool:
        """Whether to build and publish an ``event_type`` now.

        For hot loops: ``if bus.wants(Kind): bus.publish(Kind(...))``. With no handler
        it counts the event in :attr:`published` exactly as publishing it would (that
        is all publishing one to nobody does) and returns False, so the caller skips
        constructing it. Resolved once per type until subscriptions change.
        """
        if self.has_subscribers(event_type):
            return True
        self.published[event_type.__name__] += 1
        return False

    def publish(self, event: Any) -> None:
        """Deliver ``event`` (and everything it triggers) before returning, in FIFO order.

        Raises
        ------
        StepFailed
            When a step failed on this event or on one it triggered (the first such
            failure; the rest of the queue is still delivered first).
        """
        self._queue.append(event)
        if self._draining:
            return
        self._draining = True
        failed: StepFailed | None = None
        try:
            while self._queue:
                ev = self._queue.popleft()
                kind = type(ev)
                self.published[kind.__name__] += 1
                steps, observers = self._for(kind)
                stopped = False
                for handler in steps:
                    try:
                        handler(ev)
                    except Exception as exc:
                        name = getattr(handler, "__qualname__", repr(handler))
                        self.errors[name] += 1
                        log.error("step_failed", handler=name, event_type=kind.__name__,
                                  error=f"{type(exc).__name__}: {exc}")
                        if failed is None:
                            failed = StepFailed(name, ev, exc)
                            failed.__cause__ = exc
                        stopped = True
                        break
                if stopped:
                    continue  # the pipeline stops here for this event: observers see nothing
                for handler in observers:
                    try:
                        handler(ev)
                    except Exception as exc:  # isolation: one bad observer never stops the loop
                        name = getattr(handler, "__qualname__", repr(handler))
                        self.errors[name] += 1
                        log.error("handler_failed", handler=name, event_type=kind.__name__,
                                  error=f"{type(exc).__name__}: {exc}")
        finally:
            self._draining = False
        if failed is not None:
            raise failed

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


__all__ = ["STAGE_BOOK", "STAGE_DURABLE", "STAGE_RECORD", "STAGE_RISK", "STAGE_SEND", "EventBus",
           "StepFailed"]
