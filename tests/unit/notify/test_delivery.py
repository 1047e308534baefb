"""Real deliveries to local endpoints: routing, retries, a dead channel, SMTP."""

from __future__ import annotations

import time

import pytest

from tests.unit.notify.endpoints import HttpReceiver, SmtpReceiver, closed_port
from tradelab.notify import Channel, MemoryDeliveryLog, Notifier, Templates

TEMPLATES = Templates("config/templates")


def test_severity_routing_sends_each_event_only_where_it_belongs(http_receiver: HttpReceiver) -> None:
    everything = Channel("all", http_receiver.url("all"), "info")
    pager = Channel("pager", http_receiver.url("pager"), "error")
    fills_only = Channel("fills", http_receiver.url("fills"), "info", events=("order_filled",))
    with Notifier([everything, pager, fills_only], TEMPLATES, backoff=0) as n:
        assert n.notify("job_succeeded", {"job": "a", "run_id": 1, "duration": 1.0,
                                          "output_path": None, "summary": {}}) == 1
        assert n.notify("kill_switch", {"account": "paper", "reason": "drawdown", "by": "risk",
                                        "at": "2026-01-02"}) == 2
        assert n.flush(30)
    got = sorted((r["path"], r["type"]) for r in http_receiver.wait_for(3))
    assert got == [("/all", "failure"), ("/all", "info"), ("/pager", "failure")]


def test_a_failing_channel_is_retried_until_it_accepts(http_receiver: HttpReceiver) -> None:
    http_receiver.fail_first = 2
    log = MemoryDeliveryLog()
    with Notifier([Channel("flaky", http_receiver.url())], TEMPLATES, delivery_log=log,
                  retries=3, backoff=0.01) as n:
        n.notify("risk_alert", {"account": "paper", "rule": "max_position", "message": "too big",
                                "strategy": "s", "client_order_id": "c1", "at": "t",
                                "halts_trading": False})
        assert n.flush(30)
    assert http_receiver.requests == 3
    assert [r["title"] for r in http_receiver.received] == ["Risk warning: max_position on paper"]
    assert log.rows[0]["status"] == "sent" and log.rows[0]["attempts"] == 3
    assert n.stats[("flaky", "sent")] == 1


def test_retries_are_bounded_and_the_failure_is_recorded() -> None:
    log = MemoryDeliveryLog()
    dead = Channel("dead", f"json://127.0.0.1:{closed_port()}/x", timeout=2)
    with Notifier([dead], TEMPLATES, delivery_log=log, retries=2, backoff=0.01) as n:
        n.notify("job_failed", {"job": "j", "run_id": 3, "status": "failed", "error": "boom",
                                "attempts": 1, "duration": None, "notebook": "nb", "output_path": None})
        assert n.flush(60)
    assert log.rows[0]["status"] == "failed" and log.rows[0]["attempts"] == 3
    assert n.stats[("dead", "failed")] == 1


def test_a_stuck_channel_never_blocks_the_publisher_and_overflow_is_dropped() -> None:
    stuck = HttpReceiver(hang=True)
    ctx = {"check": "feed", "ok": False, "detail": "stale", "component": "engine", "at": "t"}
    try:
        n = Notifier([Channel("stuck", stuck.url(), timeout=30)], TEMPLATES, queue_size=10,
                     retries=0, backoff=0)
        n.notify("health_alert", ctx)
        deadline = time.monotonic() + 30
        while stuck.in_flight == 0:  # bounded: the worker is now blocked inside the channel
            assert time.monotonic() < deadline, "the worker never reached the channel"
            time.sleep(0.01)
        queued = [n.notify("health_alert", ctx) for _ in range(500)]
        # Every call returned while the channel is still stuck on the first request.
        assert stuck.in_flight == 1 and stuck.received == []
        assert sum(queued) == 10
        assert n.stats[("stuck", "dropped")] == 490
        stuck.release()
        assert n.flush(60)
        assert len(stuck.received) == 11
        n.close()
    finally:
        stuck.close()


def test_mail_is_delivered_over_smtp_with_login(smtp_receiver: SmtpReceiver) -> None:
    mail = Channel("mail", smtp_receiver.url("bot", "s3cr3t-pass"), "warning")
    with Notifier([mail], TEMPLATES, backoff=0.01) as n:
        n.notify("kill_switch", {"account": "paper", "reason": "max drawdown 25%", "by": "risk",
                                 "at": "2026-12-01"})
        n.notify("order_filled", {"x": 1})  # info: below the channel's threshold
        assert n.flush(30)
    [msg] = smtp_receiver.wait_for(1)
    assert msg["to"] == ["ops@example.com"]
    assert "KILL SWITCH engaged on paper" in msg["content"]
    assert "max drawdown 25%" in msg["content"]
    assert smtp_receiver.logins == [("bot", "s3cr3t-pass")]
    assert "s3cr3t-pass" not in repr(mail) and "s3cr3t-pass" not in mail.target


@pytest.mark.parametrize("severity", ["loud", ""])
def test_unknown_severities_are_refused(severity: str) -> None:
    with Notifier([], TEMPLATES) as n, pytest.raises(ValueError, match="severity"):
        n.notify("job_failed", {}, severity=severity or "nope")
