"""Every notification is accounted for: a hung channel (a real black-hole TCP server) ends
each delivery in a terminal, recorded state, and a healthy channel beside it delivers everything."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.unit.monitor.logcapture import json_log_records
from tests.unit.notify.endpoints import BlackHole, HttpReceiver
from tradelab.app import build_notifier
from tradelab.notify import (
    Channel,
    Notifier,
    NotifySettings,
    Outcome,
    StoreDeliveryLog,
    Templates,
    build_channels,
)
from tradelab.store import Store
from tradelab.store.jobs_repo import DeliveryRecord, JobsRepo

TEMPLATES = Templates("config/templates")
CTX = {"check": "feed", "ok": False, "detail": "stale", "component": "engine", "at": "t"}


class Outcomes:
    """A notifier listener that lets a test wait for outcomes instead of sleeping."""

    def __init__(self) -> None:
        self.seen: list[Outcome] = []
        self._cond = threading.Condition()

    def __call__(self, outcome: Outcome) -> None:
        with self._cond:
            self.seen.append(outcome)
            self._cond.notify_all()

    def count(self, channel: str, status: str | None = None) -> int:
        with self._cond:
            return sum(1 for o in self.seen
                       if o.channel == channel and (status is None or o.status == status))

    def wait_for(self, channel: str, status: str, n: int, timeout: float = 30.0) -> None:
        with self._cond:
            ok = self._cond.wait_for(lambda: sum(1 for o in self.seen if o.channel == channel
                                                 and o.status == status) >= n, timeout)
        assert ok, f"expected {n} {status} outcome(s) on {channel} within {timeout}s"


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'n.db'}")
    s.upgrade()
    yield s
    s.close()


def _rows(store: Store, channel: str) -> list[DeliveryRecord]:
    return JobsRepo(store).deliveries(channel=channel)


def test_a_black_hole_channel_ends_every_delivery_in_a_recorded_terminal_state(
        store: Store, black_hole: BlackHole, http_receiver: HttpReceiver) -> None:
    n_events = 60
    hole = Channel("hole", black_hole.url(), timeout=0.2)
    healthy = Channel("healthy", http_receiver.url())
    outcomes = Outcomes()
    n = Notifier([hole, healthy], TEMPLATES, delivery_log=StoreDeliveryLog(store), retries=1,
                 backoff=0.01)
    n.listeners.append(outcomes)
    with json_log_records() as records:
        queued = [n.notify("health_alert", CTX, reference=f"r{i}") for i in range(n_events)]
        assert queued == [2] * n_events  # accepted for both channels, none refused
        http_receiver.wait_for(n_events)
        # The black hole's attempts time out (connect succeeds, no answer): a failure is recorded.
        outcomes.wait_for("hole", "failed", 1)
        started = time.monotonic()
        n.close(timeout=0.3)
        closing = time.monotonic() - started
        logged = records()
    # Bounded by the grace period, not by 60 deliveries x 2 attempts x 0.2 s.
    assert closing < 5.0

    rows = _rows(store, "hole")
    assert len(rows) == n_events
    assert sorted(r.reference or "" for r in rows) == sorted(f"r{i}" for i in range(n_events))
    status = Counter(r.status for r in rows)
    assert set(status) <= {"failed", "dropped"} and status["failed"] >= 1
    failed = [r for r in rows if r.status == "failed"]
    assert all("did not answer within 0.2s" in (r.error or "") and r.finished_at for r in failed)
    dropped = [r for r in rows if r.status == "dropped"]
    assert dropped and all((r.error or "").startswith("shutdown: ") and r.finished_at
                           for r in dropped)
    assert black_hole.connections >= 2  # the network call was really made, and retried

    sent = _rows(store, "healthy")
    assert len(sent) == n_events and {r.status for r in sent} == {"sent"}
    assert len(http_receiver.received) == n_events

    # Counted and reported once each, and each failure and drop logged once.
    assert n.stats[("hole", "failed")] == status["failed"]
    assert n.stats[("hole", "dropped")] == status["dropped"]
    assert n.stats[("healthy", "sent")] == n_events
    assert outcomes.count("hole") == n_events and outcomes.count("healthy") == n_events
    events = Counter(r["event"] for r in logged if r.get("channel") == "hole")
    assert events["notification_failed"] == status["failed"]
    assert events["notification_dropped"] == status["dropped"]


def test_an_attempt_unanswered_at_shutdown_is_dropped_after_the_grace_period(
        store: Store, black_hole: BlackHole) -> None:
    hole = Channel("hole", black_hole.url(), timeout=60)  # the attempt outlives the grace period
    n = Notifier([hole], TEMPLATES, delivery_log=StoreDeliveryLog(store), retries=3,
                 backoff=0.01, shutdown_grace=0.3)
    for i in range(5):
        assert n.notify("health_alert", CTX, reference=f"r{i}") == 1
    black_hole.wait_for_connections(1)  # the first delivery is now in flight
    started = time.monotonic()
    n.close()
    assert time.monotonic() - started < 5.0

    rows = {r.reference: r for r in _rows(store, "hole")}
    assert sorted(rows) == [f"r{i}" for i in range(5)]
    assert {r.status for r in rows.values()} == {"dropped"}
    assert rows["r0"].error == ("shutdown: channel hole did not answer within the 0.3s grace "
                                "period (attempt 1 in flight)")
    assert rows["r0"].attempts == 1
    for i in range(1, 5):
        assert rows[f"r{i}"].error == ("shutdown: still queued for channel hole after the 0.3s "
                                       "grace period")
        assert rows[f"r{i}"].attempts == 0
    assert n.notify("health_alert", CTX) == 0  # closed: nothing more is accepted


def test_a_full_queue_records_every_dropped_notification_with_its_reason(
        store: Store, black_hole: BlackHole) -> None:
    hole = Channel("hole", black_hole.url(), timeout=60)
    outcomes = Outcomes()
    n = Notifier([hole], TEMPLATES, delivery_log=StoreDeliveryLog(store), queue_size=5,
                 retries=0, shutdown_grace=0.2)
    n.listeners.append(outcomes)
    assert n.notify("health_alert", CTX, reference="first") == 1
    black_hole.wait_for_connections(1)  # the worker is stuck on the first one
    queued = [n.notify("health_alert", CTX, reference=f"r{i}") for i in range(50)]
    assert sum(queued) == 5
    assert n.stats[("hole", "dropped")] == 45  # counted at once, on the publisher's thread
    outcomes.wait_for("hole", "dropped", 45)  # the rows are written off that thread
    overflow = _rows(store, "hole")
    assert len(overflow) == 46  # 45 dropped and the first one, pending
    n.close()

    rows = _rows(store, "hole")
    assert len(rows) == 51 and {r.status for r in rows} == {"dropped"}
    reasons = Counter((r.error or "").split(":")[0] for r in rows)
    assert reasons == {"queue full": 45, "shutdown": 6}
    assert all(r.error == "queue full: channel hole already had 5 notifications waiting"
               for r in rows if r.reference in {f"r{i}" for i in range(5, 50)})
    assert outcomes.count("hole", "dropped") == 51 == n.stats[("hole", "dropped")]


def test_delivery_timeout_and_shutdown_grace_come_from_the_notify_section() -> None:
    cfg = NotifySettings(delivery_timeout=0.5, shutdown_grace=2.0, channels={
        "chat": {"url": "json://127.0.0.1:9/chat"},
        "mail": {"url": "json://127.0.0.1:9/mail", "timeout": 3}})
    chat, mail = build_channels(cfg.channels, cfg.delivery_timeout)
    assert (chat.name, chat.timeout) == ("chat", 0.5)
    assert (mail.name, mail.timeout) == ("mail", 3.0)  # a channel's own timeout wins
    notifier = build_notifier(SimpleNamespace(notify=cfg))
    try:
        assert [c.timeout for c in notifier.channels] == [0.5, 3.0]
        assert notifier.shutdown_grace == 2.0
    finally:
        notifier.close(0)
