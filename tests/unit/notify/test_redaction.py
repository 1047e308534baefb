"""Channel URLs embed tokens and passwords: they never appear unmasked in logs, records or dumps."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from tests.unit.monitor.logcapture import json_log_records
from tests.unit.notify.endpoints import closed_port
from tradelab.monitor.redact import MASK, redact_text
from tradelab.notify import Channel, Notifier, NotifySettings, StoreDeliveryLog, Templates
from tradelab.store import Store
from tradelab.store.jobs_repo import JobsRepo

PASSWORD = "hunter2-pa55w0rd"
TOKEN = "tok3n-0123456789abcdef"


def _secret_url() -> str:
    return f"json://alerts:{PASSWORD}@127.0.0.1:{closed_port()}/hook/{TOKEN}?token={TOKEN}"


def test_redact_text_masks_passwords_tokens_and_registered_urls() -> None:
    url = _secret_url()
    Channel("ops", url)  # registers the URL and its parts
    text = f"connect {url} failed; retry later with token={TOKEN}"
    out = redact_text(text)
    assert PASSWORD not in out and TOKEN not in out and MASK in out
    assert redact_text("https://bob:pw123456@example.com/x") == f"https://bob:{MASK}@example.com/x"
    assert redact_text("nothing secret here") == "nothing secret here"


def test_a_failing_channel_leaks_nothing_into_logs_or_delivery_records(tmp_path: Path) -> None:
    url = _secret_url()
    store = Store(f"sqlite:///{tmp_path / 'n.db'}")
    store.upgrade()
    apprise_records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            apprise_records.append(record.getMessage())

    handler = Keep(level=logging.DEBUG)
    apprise_logger = logging.getLogger("apprise")
    old_level = apprise_logger.level
    apprise_logger.addHandler(handler)
    apprise_logger.setLevel(logging.DEBUG)
    try:
        with json_log_records() as records:
            channel = Channel("ops", url, timeout=2)
            with Notifier([channel], Templates(None), delivery_log=StoreDeliveryLog(store),
                          retries=1, backoff=0.01) as n:
                n.notify("job_failed", {"job": "j", "url_in_context": url})
                assert n.flush(60)
            structlog_lines = records()
            import structlog

            structlog.get_logger("test").info("explicit", url=url, api_key="abc", nested={"u": url})
            structlog_lines = records()
    finally:
        apprise_logger.removeHandler(handler)
        apprise_logger.setLevel(old_level)
    [delivery] = JobsRepo(store).deliveries()
    store.close()
    assert delivery.status == "failed" and delivery.attempts == 2
    failed = [r for r in structlog_lines if r["event"] == "notification_failed"]
    assert failed and failed[0]["channel"] == "ops"
    explicit = next(r for r in structlog_lines if r["event"] == "explicit")
    assert explicit["api_key"] == "**********" and PASSWORD not in explicit["url"]
    dumped = json.dumps([structlog_lines, apprise_records, delivery.target, delivery.error,
                         delivery.title, repr(channel)], default=str)
    assert apprise_records  # apprise did log about the failure...
    assert PASSWORD not in dumped and TOKEN not in dumped  # ...without the secrets


def test_settings_dump_masks_channel_urls() -> None:
    cfg = NotifySettings(channels={"ops": {"url": _secret_url(), "min_severity": "error"}})
    dumped = json.dumps(cfg.model_dump(mode="json"))
    assert PASSWORD not in dumped and TOKEN not in dumped
    assert cfg.channels["ops"].url.get_secret_value().startswith("json://alerts:")
