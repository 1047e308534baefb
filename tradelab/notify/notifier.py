"""The notifier: routes events to channels and delivers them off the trading path.

``notify()`` is what engine handlers call. It only routes and enqueues (no
I/O, no rendering, no database), so it returns in microseconds whatever the
channels do. Each channel has its own worker thread and bounded queue: a slow
or dead channel delays only itself, and when its queue is full new
notifications for it are dropped rather than blocking the caller.

A worker renders the template, records a delivery row, tries the channel with
exponential backoff (tenacity), each attempt bounded by the channel's timeout,
and records the outcome.

Every notification a channel routes ends in exactly one terminal delivery
record: ``sent``, ``failed`` (attempts exhausted) or ``dropped`` with the
reason (its queue was full, or it was still queued or unanswered when
:meth:`Notifier.close` gave up after the grace period). Drops are written by a
recorder thread, in batches, so a flood of them costs the publisher nothing.
Each non-``sent`` outcome is logged once and passed to the listeners (metrics).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

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
from tradelab.notify.deliveries import (
    DeliveryLog,
    Dropped,
    MemoryDeliveryLog,
    Notification,
    Outcome,
)
from tradelab.notify.settings import EVENT_SEVERITY, severity_rank
from tradelab.notify.templates import Templates

log = structlog.get_logger("tradelab.notify")
_STOP = object()
_DROP_BATCH = 500  # drop rows written per transaction


class _Drop(NamedTuple):
    """A notification the recorder thread must record as dropped."""

    channel: Channel
    n: Notification
    reason: str
    counted: bool = False  # already in ``stats`` (queue-full drops are counted by notify())


@dataclass(slots=True)
class _Delivery:
    """One notification a worker took from its queue (shared with ``close()``).

    ``row`` says whether its delivery row exists yet: ``close()`` may settle a
    delivery at any point, and whoever settles it first decides its status.
    """

    channel: Channel
    n: Notification
    title: str | None = None
    row: Literal["none", "recording", "open"] = "none"
    handle: Any = None
    attempts: int = 0
    status: str | None = None  # terminal status once settled
    error: str | None = None


class Notifier:
    """Routes notifications to channels by event type and severity; delivers in the background.

    Parameters
    ----------
    channels
        Destinations with their routing rules (each with its per-attempt timeout).
    templates
        Per-event templates (``None``: plain fallback rendering).
    delivery_log
        Where attempts are recorded (default: in memory).
    queue_size
        Pending notifications per channel before new ones are dropped.
    retries, backoff, max_backoff
        Extra attempts after a failure, waiting ``backoff * 2**k`` seconds (capped).
    shutdown_grace
        Default seconds :meth:`close` waits for queued and in-flight deliveries.
    """

    def __init__(self, channels: Sequence[Channel], templates: Templates | None = None, *,
                 delivery_log: DeliveryLog | None = None, queue_size: int = 1000, retries: int = 3,
                 backoff: float = 1.0, max_backoff: float = 30.0,
                 shutdown_grace: float = 5.0) -> None:
        names = [c.name for c in channels]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate channel names: {names}")
        self.channels = list(channels)
        self.templates = templates or Templates(None)
        self.delivery_log: DeliveryLog = delivery_log or MemoryDeliveryLog()
        self.queue_size = queue_size
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self.shutdown_grace = self._grace = shutdown_grace
        self.listeners: list[Callable[[Outcome], None]] = []
        self.stats: Counter[tuple[str, str]] = Counter()
        self._stop = threading.Event()
        self._closed = False
        # One lock guards the stop flag against notify(), the in-flight table and
        # the count of notifications not yet recorded in a terminal state.
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._open = 0
        self._busy: dict[str, _Delivery] = {}
        self._queues: dict[str, queue.Queue[Any]] = {
            c.name: queue.Queue(maxsize=queue_size) for c in self.channels}
        self._drops: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, args=(c,), daemon=True,
                                          name=f"notify-{c.name}") for c in self.channels]
        self._recorder = threading.Thread(target=self._record_drops, daemon=True,
                                          name="notify-recorder")
        for t in [*self._threads, self._recorder]:
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
        queue drops the notification for that channel (counted as ``dropped``
        at once; its delivery row and log event are written by the recorder
        thread). After :meth:`close` nothing is queued and 0 is returned.
        """
        sev = severity or EVENT_SEVERITY.get(event_type, "info")
        severity_rank(sev)
        n = Notification(event_type, sev, dict(context or {}), reference)
        queued = 0
        with self._lock:  # held for microseconds: close() must not miss a late put
            if self._stop.is_set():
                return 0
            for ch in self.channels:
                if not ch.accepts(event_type, sev):
                    continue
                self._open += 1
                try:
                    self._queues[ch.name].put_nowait(n)
                    queued += 1
                except queue.Full:
                    # Counted here so ``stats`` shows the overflow at once; the row and
                    # the log event are the recorder's job (no I/O on this thread).
                    self.stats[(ch.name, "dropped")] += 1
                    self._drops.put(_Drop(ch, n, f"queue full: channel {ch.name} already had "
                                                 f"{self.queue_size} notifications waiting",
                                          counted=True))
        return queued

    # -- lifecycle ---------------------------------------------------------------------
    def flush(self, timeout: float = 10.0) -> bool:
        """Wait (at most ``timeout`` s) until every notification reached a recorded terminal state."""
        with self._settled:
            return self._settled.wait_for(lambda: self._open == 0, timeout=max(timeout, 0.0))

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued within the grace period, record the rest as dropped, stop.

        Parameters
        ----------
        timeout
            The grace period in seconds (default: ``shutdown_grace``). Queued
            and in-flight deliveries get this long; then everything still
            queued, and every attempt a channel has not answered, is recorded
            as ``dropped`` with the reason. Returns once those records are
            written (bounded). Workers are daemon threads: a channel still
            stuck afterwards cannot keep the process alive, and its late
            answer does not change the record.
        """
        if self._closed:
            return
        self._closed = True
        grace = self.shutdown_grace if timeout is None else timeout
        self._grace = grace
        deadline = time.monotonic() + grace
        self.flush(grace)
        with self._lock:
            self._stop.set()  # interrupts backoff waits and stops further retries
        for ch in self.channels:
            q = self._queues[ch.name]
            while True:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
                q.task_done()
                self._drops.put(_Drop(ch, item, _still_queued(ch, grace)))
            q.put_nowait(_STOP)  # just drained and put cannot refill it: there is room
        for t in self._threads:
            t.join(max(deadline - time.monotonic(), 0.0))
        with self._lock:
            stuck = [d for d in self._busy.values() if d.status is None]
        for d in stuck:
            # A worker that took the item but had not reached the channel yet is as good as queued.
            reason = (f"shutdown: channel {d.channel.name} did not answer within the {grace:g}s "
                      f"grace period (attempt {d.attempts} in flight)" if d.attempts
                      else _still_queued(d.channel, grace))
            self._settle(d, "dropped", reason)
        # Bounded: only database writes remain, and each is itself bounded.
        if not self.flush(max(10.0, grace)):
            with self._lock:
                missing = self._open
            log.error("notifications_unrecorded", count=missing)
        self._drops.put(_STOP)
        self._recorder.join(1.0)

    @property
    def alive(self) -> bool:
        """Whether every channel worker and the recorder are running."""
        return (all(t.is_alive() for t in self._threads) and self._recorder.is_alive()
                and not self._stop.is_set())

    # -- outcomes ----------------------------------------------------------------------
    def _outcome(self, outcome: Outcome, *, counted: bool = False) -> None:
        # Each outcome is reported exactly once: counted, logged (unless sent), listeners.
        with self._lock:
            if not counted:
                self.stats[(outcome.channel, outcome.status)] += 1
            count = self.stats[(outcome.channel, outcome.status)]
        if outcome.status != "sent":
            log.warning("notification_" + outcome.status, channel=outcome.channel,
                        event_type=outcome.event_type, severity=outcome.severity,
                        attempts=outcome.attempts, error=outcome.error, count=count)
        for listener in self.listeners:
            try:
                listener(outcome)
            except Exception as exc:  # metrics must never break delivery
                log.error("notify_listener_failed", error=f"{type(exc).__name__}: {exc}")

    def _done(self, k: int = 1) -> None:
        with self._settled:
            self._open -= k
            if self._open <= 0:
                self._settled.notify_all()

    def _record(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # the database being down must not stop alerts
            log.error("delivery_log_failed", error=redact_text(f"{type(exc).__name__}: {exc}"))
            return None

    def _title(self, n: Notification) -> str:
        ctx = {**n.context, "event_type": n.event_type, "severity": n.severity}
        try:
            return self.templates.render(n.event_type, ctx).title
        except Exception:  # a drop is recorded even when its title cannot be made
            return n.event_type

    # -- the recorder thread: drops, in batches ----------------------------------------
    def _record_drops(self) -> None:
        while True:
            batch = [self._drops.get()]
            while len(batch) < _DROP_BATCH:
                try:
                    batch.append(self._drops.get_nowait())
                except queue.Empty:
                    break
            items = [b for b in batch if b is not _STOP]
            try:
                self._write_drops(items)
            except Exception as exc:  # the recorder must survive anything
                log.error("notify_recorder_error", error=redact_text(f"{type(exc).__name__}: {exc}"))
            if len(items) != len(batch):
                return

    def _write_drops(self, items: list[_Drop]) -> None:
        if not items:
            return
        try:
            drops = [Dropped(i.n, i.channel, self._title(i.n), i.reason) for i in items]
            self._record(self.delivery_log.dropped, drops)
            for i, d in zip(items, drops, strict=True):
                self._outcome(Outcome(d.channel.name, d.notification.event_type,
                                      d.notification.severity, "dropped", 0, d.title, d.reason),
                              counted=i.counted)
        finally:
            self._done(len(items))

    # -- channel workers ---------------------------------------------------------------
    def _work(self, channel: Channel) -> None:
        q = self._queues[channel.name]
        while True:
            item = q.get()
            try:
                if item is _STOP:
                    return
                self._take(channel, item)
            except Exception as exc:  # a worker must survive anything
                log.error("notify_worker_error", channel=channel.name,
                          error=redact_text(f"{type(exc).__name__}: {exc}"))
            finally:
                q.task_done()

    def _take(self, channel: Channel, n: Notification) -> None:
        d = _Delivery(channel, n)
        with self._lock:
            stopping = self._stop.is_set()
            if not stopping:
                self._busy[channel.name] = d  # from here on close() can settle it
        if stopping:
            self._drops.put(_Drop(channel, n, _still_queued(channel, self._grace)))
            return
        try:
            self._deliver(d)
        finally:
            with self._lock:
                if self._busy.get(channel.name) is d:
                    del self._busy[channel.name]

    def _settle(self, d: _Delivery, status: str, error: str | None) -> bool:
        """Give ``d`` its terminal status unless it already has one; ``False`` if it had."""
        with self._lock:
            if d.status is not None:
                return False
            d.status, d.error = status, error
            # A worker inside started() writes the outcome itself once it has the row.
            write_now = d.row != "recording"
        if write_now:
            self._finish(d)
        return True

    def _finish(self, d: _Delivery) -> None:
        status = d.status or "dropped"  # only called once settled
        try:
            title = d.title if d.title is not None else self._title(d.n)
            if d.row == "none":
                self._record(self.delivery_log.dropped,
                             [Dropped(d.n, d.channel, title, d.error or "", d.attempts)])
            elif d.handle is not None:
                self._record(self.delivery_log.finished, d.handle, status, d.attempts, d.error)
            self._outcome(Outcome(d.channel.name, d.n.event_type, d.n.severity, status,
                                  d.attempts, title, d.error))
        finally:
            self._done()

    def _pause(self, seconds: float) -> None:
        # Backoff waits on the stop flag so close() cuts them short.
        self._stop.wait(seconds)

    def _deliver(self, d: _Delivery) -> None:
        channel, n = d.channel, d.n
        ctx = {**n.context, "event_type": n.event_type, "severity": n.severity}
        rendered = self.templates.render(n.event_type, ctx)
        with self._lock:
            if d.status is not None:  # close() dropped it meanwhile (and wrote the row)
                return
            d.title, d.row = rendered.title, "recording"
        handle = self._record(self.delivery_log.started, n, channel, rendered.title)
        with self._lock:
            d.handle, d.row = handle, "open"
            settled_meanwhile = d.status is not None
        if settled_meanwhile:
            self._finish(d)
            return
        error: str | None = None
        wait = (wait_exponential(multiplier=self.backoff, max=self.max_backoff)
                if self.backoff > 0 else wait_none())
        retrying = Retrying(stop=stop_after_attempt(self.retries + 1) | stop_when_event_set(self._stop),
                            wait=wait, retry=retry_if_exception_type(DeliveryError), reraise=True,
                            sleep=self._pause)
        try:
            for attempt in retrying:
                with attempt:
                    d.attempts += 1
                    channel.send(rendered.title, rendered.body, n.severity)
            status = "sent"
        except DeliveryError as exc:
            status, error = "failed", str(exc)
            if self._stop.is_set() and d.attempts < self.retries + 1:
                error += f" (retries abandoned at shutdown after {d.attempts} attempt(s))"
        if not self._settle(d, status, error):
            # close() recorded it as dropped; say what the channel eventually did.
            log.info("notification_answered_after_shutdown", channel=channel.name,
                     event_type=n.event_type, status=status, recorded=d.status)


def _still_queued(channel: Channel, grace: float) -> str:
    return (f"shutdown: still queued for channel {channel.name} after the {grace:g}s "
            "grace period")
