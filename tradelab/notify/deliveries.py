"""What a notification is, how a delivery ended, and where outcomes are recorded."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from tradelab.notify.channels import Channel

if TYPE_CHECKING:
    from tradelab.store import Store


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


@dataclass(frozen=True, slots=True)
class Dropped:
    """A notification given up on before a delivery row existed, and why."""

    notification: Notification
    channel: Channel
    title: str
    reason: str
    attempts: int = 0
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


class DeliveryLog(Protocol):
    """Where delivery attempts are recorded."""

    def started(self, n: Notification, channel: Channel, title: str) -> Any: ...

    def finished(self, handle: Any, status: str, attempts: int, error: str | None) -> None: ...

    def dropped(self, items: Sequence[Dropped]) -> None: ...


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

    def dropped(self, items: Sequence[Dropped]) -> None:
        with self._lock:
            self.rows.extend({"event_type": d.notification.event_type,
                              "severity": d.notification.severity, "channel": d.channel.name,
                              "target": d.channel.target, "title": d.title,
                              "reference": d.notification.reference, "status": "dropped",
                              "attempts": d.attempts, "error": d.reason} for d in items)


class StoreDeliveryLog:
    """Deliveries recorded in the store's ``notification_deliveries`` table."""

    def __init__(self, store: Store) -> None:
        from tradelab.store.jobs_repo import JobsRepo

        self.repo = JobsRepo(store)

    def started(self, n: Notification, channel: Channel, title: str) -> int:
        return self.repo.add_delivery(event_type=n.event_type, severity=n.severity,
                                      channel=channel.name, target=channel.target, title=title,
                                      reference=n.reference, created_at=n.created_at)

    def finished(self, handle: int, status: str, attempts: int, error: str | None) -> None:
        self.repo.update_delivery(handle, status=status, attempts=attempts, error=error,
                                  finished_at=datetime.now(UTC))

    def dropped(self, items: Sequence[Dropped]) -> None:
        self.repo.add_deliveries([
            {"event_type": d.notification.event_type, "severity": d.notification.severity,
             "channel": d.channel.name, "target": d.channel.target, "title": d.title,
             "reference": d.notification.reference, "status": "dropped", "attempts": d.attempts,
             "error": d.reason, "created_at": d.notification.created_at, "finished_at": d.at}
            for d in items])
