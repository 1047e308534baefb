"""The notifier: routes events to channels and delivers them off the trading path.

``notify()`` is what engine handlers call. It only routes and enqueues (no
I/O, no rendering, no database), so it returns in microseconds whatever the
channels do. Each channel has its own worker thread and bounded queue: a slow
or dead channel delays only itself, and when its queue is full new
notifications for it are dropped and counted rather than blocking the caller.

A worker renders the template, records a delivery row, tries the channel with
exponential backoff (tenacity) and records the outcome.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential,
    wait_none,
)

from tradelab.monitor.redact import redact_text
from tradelab.notify.channels import Channel, DeliveryError
from tradelab.notify.settings import EVENT_SEVERITY, severity_rank
from tradelab.notify.templates import Templates

log = structlog.get_logger("tradelab.notify")
_STOP = object()


@dataclass(frozen=True, slots=True)
class Notification:
    """An event to announce: its type, severity and template context."""

    event_type: str
    severity: str
    context: Mapping[str, Any]
    reference: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of delivering one notification to one channel."""

    channel: str
    event_type: str
    severity: str
    status: str  # "sent", "failed" or "dropped"
    attempts: int
    title: str = ""
    error: str | None = None


class DeliveryLog(Protocol):
    """Where delivery attempts are recorded."""

    def started(self, n: Notification, channel: Channel, title: str) -> Any: ...

    def finished(self, handle: Any, status: str, attempts: int, error: str | None) -> None: ...


class MemoryDeliveryLog:
    """Deliveries kept in memory (no store configured, or tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rows: list[dict[str, Any]] = []

    def started(self, n: Notification, channel: Channel, title: str) -> int:
        with self._lock:
            self.rows.append({"event_type": n.event_type, "severity": n.severity,
                              "channel": channel.name, "target": channel.target, "title": title,
                              "reference": n.reference, "status": "pending", "attempts": 0,
                              "error": None})
            return len(self.rows) - 1

    def finished(self, handle: int, status: str, attempts: int, error: str | None) -> None:
        with self._lock:
            self.rows[handle].update(status=status, attempts=attempts, error=error)


class StoreDeliveryLog:
    """Deliveries recorded in the store's ``notification_deliveries`` table."""

    def __init__(self, store: Any) -> None:
        from tradelab.store.jobs_repo import JobsRepo

        self.repo = JobsRepo(store)

    def started(self, n: Notification, channel: Channel, title: str) -> int:
        return self.repo.add_delivery(event_type=n.event_type, severity=n.severity,
                                      channel=channel.name, target=channel.target, title=title,
                                      reference=n.reference, created_at=n.created_at)

    def finished(self, handle: int, status: str, attempts: int, error: str | None) -> None:
        self.repo.update_delivery(handle, status=status, attempts=attempts, error=error,
                                  finished_at=datetime.now(UTC))


class Notifier:
    """Routes notifications to channels by event type and severity; delivers in the background.

    Parameters
    ----------
    channels
        Destinations with their routing rules.
    templates
        Per-event templates (``None``: plain fallback rendering).
    delivery_log
        Where attempts are recorded (default: in memory).
    queue_size
        Pending notifications per channel before new ones are dropped.
    retries, backoff, max_backoff
        Extra attempts after a failure, waiting ``backoff * 2**k`` seconds (capped).
    """

    def __init__(self, channels: Sequence[Channel], templates: Templates | None = None, *,
                 delivery_log: DeliveryLog | None = None, queue_size: int = 1000, retries: int = 3,
                 backoff: float = 1.0, max_backoff: float = 30.0) -> None:
        names = [c.name for c in channels]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate channel names: {names}")
        self.channels = list(channels)
        self.templates = templates or Templates(None)
        self.delivery_log: DeliveryLog = delivery_log or MemoryDeliveryLog()
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self.listeners: list[Callable[[Outcome], None]] = []
        self.stats: Counter[tuple[str, str]] = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._queues = {c.name: queue.Queue(maxsize=queue_size) for c in self.channels}
        self._threads = [threading.Thread(target=self._work, args=(c,), daemon=True,
                                          name=f"notify-{c.name}") for c in self.channels]
        for t in self._threads:
            t.start()

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- publishing (any thread, never blocks) -----------------------------------------
    def notify(self, event_type: str, context: Mapping[str, Any] | None = None, *,
               severity: str | None = None, reference: str | None = None) -> int:
        """Queue a notification for every channel that routes it; return how many were queued.

        Never blocks and never raises for delivery problems: a full channel
        queue drops the notification for that channel (counted as ``dropped``).
        """
        sev = severity or EVENT_SEVERITY.get(event_type, "info")
        severity_rank(sev)
        if self._stop.is_set():
            return 0
        n = Notification(event_type, sev, dict(context or {}), reference)
        queued = 0
        for ch in self.channels:
            if not ch.accepts(event_type, sev):
                continue
            try:
                self._queues[ch.name].put_nowait(n)
                queued += 1
            except queue.Full:
                self._outcome(Outcome(ch.name, event_type, sev, "dropped", 0, error="queue full"))
        return queued

    # -- lifecycle ---------------------------------------------------------------------
    def flush(self, timeout: float = 10.0) -> bool:
        """Wait (at most ``timeout`` s) until every queued notification was handled."""
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            while not deadline.is_set():
                if all(q.unfinished_tasks == 0 for q in self._queues.values()):
                    return True
                deadline.wait(0.01)
            return all(q.unfinished_tasks == 0 for q in self._queues.values())
        finally:
            timer.cancel()

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued for up to ``timeout`` s, then stop the workers.

        Workers are daemon threads: a channel still stuck after the timeout
        cannot keep the process alive.
        """
        self.flush(timeout)
        self._stop.set()
        for q in self._queues.values():
            # A full queue: the worker sees the stop flag after its current item.
            with contextlib.suppress(queue.Full):
                q.put_nowait(_STOP)
        for t in self._threads:
            t.join(timeout=0.5)

    @property
    def alive(self) -> bool:
        """Whether every channel worker is running."""
        return all(t.is_alive() for t in self._threads) and not self._stop.is_set()

    # -- workers -----------------------------------------------------------------------
    def _outcome(self, outcome: Outcome) -> None:
        with self._lock:
            self.stats[(outcome.channel, outcome.status)] += 1
            count = self.stats[(outcome.channel, outcome.status)]
        if outcome.status != "sent" and (outcome.status != "dropped" or count in (1, 10, 100)
                                         or count % 1000 == 0):
            log.warning("notification_" + outcome.status, channel=outcome.channel,
                        event_type=outcome.event_type, severity=outcome.severity,
                        attempts=outcome.attempts, error=outcome.error, count=count)
        for listener in self.listeners:
            try:
                listener(outcome)
            except Exception as exc:  # metrics must never break delivery
                log.error("notify_listener_failed", error=f"{type(exc).__name__}: {exc}")

    def _work(self, channel: Channel) -> None:
        q = self._queues[channel.name]
        while True:
            item = q.get()
            try:
                if item is _STOP:
                    return
                self._deliver(channel, item)
            except Exception as exc:  # a worker must survive anything
                log.error("notify_worker_error", channel=channel.name,
                          error=redact_text(f"{type(exc).__name__}: {exc}"))
            finally:
                q.task_done()
            if self._stop.is_set() and q.empty():
                return

    def _record(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # the database being down must not stop alerts
            log.error("delivery_log_failed", error=redact_text(f"{type(exc).__name__}: {exc}"))
            return None

    def _deliver(self, channel: Channel, n: Notification) -> None:
        ctx = {**n.context, "event_type": n.event_type, "severity": n.severity}
        rendered = self.templates.render(n.event_type, ctx)
        handle = self._record(self.delivery_log.started, n, channel, rendered.title)
        attempts = 0
        error: str | None = None
        wait = (wait_exponential(multiplier=self.backoff, max=self.max_backoff)
                if self.backoff > 0 else wait_none())
        retrying = Retrying(stop=stop_after_attempt(self.retries + 1) | stop_when_event_set(self._stop),
                            wait=wait, retry=retry_if_exception_type(DeliveryError), reraise=True,
                            sleep=self._stop.wait)  # close() interrupts a backoff wait
        try:
            for attempt in retrying:
                with attempt:
                    attempts += 1
                    channel.send(rendered.title, rendered.body, n.severity)
            status = "sent"
        except DeliveryError as exc:
            status, error = "failed", str(exc)
        if handle is not None:
            self._record(self.delivery_log.finished, handle, status, attempts, error)
        self._outcome(Outcome(channel.name, n.event_type, n.severity, status, attempts,
                              rendered.title, error))
