"""An engine run announces its fills and risk events through real channels, off the trading path.

A hung channel (a black-hole TCP server) beside them costs the run nothing and
loses nothing: each of its deliveries ends recorded as failed or dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.integration.jobs_helpers import ROOT
from tests.unit.monitor.engine_helper import make_engine
from tests.unit.notify.endpoints import BlackHole, HttpReceiver, SmtpReceiver
from tradelab.notify import Channel, Notifier, StoreDeliveryLog, Templates, attach
from tradelab.store import Store
from tradelab.store.jobs_repo import JobsRepo


@pytest.fixture()
def endpoints() -> Iterator[tuple[HttpReceiver, SmtpReceiver]]:
    http, smtp = HttpReceiver(), SmtpReceiver()
    yield http, smtp
    http.close()
    smtp.close()


def test_fills_go_to_chat_and_critical_risk_to_mail(spx: pd.DataFrame, tmp_path: Path,
                                                    endpoints: tuple[HttpReceiver, SmtpReceiver]) -> None:
    http, smtp = endpoints
    store = Store(f"sqlite:///{tmp_path / 'n.db'}")
    store.upgrade()
    chat = Channel("chat", http.url("chat"), "info", events=("order_filled",))
    mail = Channel("mail", smtp.url("bot", "mail-pa55word"), "critical")
    notifier = Notifier([chat, mail], Templates(ROOT / "config" / "templates"),
                        delivery_log=StoreDeliveryLog(store), backoff=0.05)
    engine = make_engine(spx, max_drawdown=0.02, year="2008")  # a 2 % drawdown limit halts trading
    attach(engine.bus, notifier)
    result = engine.run()
    assert notifier.flush(60)
    notifier.close()
    fills = http.wait_for(len(result.fills))
    assert len(fills) == len(result.fills) > 0
    assert all(m["title"].startswith("Filled: ") and m["type"] == "info" for m in fills)
    critical = [a for a in result.risk_alerts if a.severity == "critical"]
    assert critical, "the drawdown limit should have halted trading"
    mails = smtp.wait_for(1)
    assert any("Risk critical: max_drawdown on paper" in m["content"] for m in mails)
    rows = JobsRepo(store).deliveries()
    assert {r.status for r in rows} == {"sent"}
    assert {r.channel for r in rows} == {"chat", "mail"}
    assert all("mail-pa55word" not in (r.target + (r.error or "")) for r in rows)
    store.close()


@pytest.fixture()
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()


def test_a_hung_channel_beside_a_healthy_one_loses_no_fill_notification(
        spx: pd.DataFrame, tmp_path: Path, black_hole: BlackHole) -> None:
    http = HttpReceiver()
    store = Store(f"sqlite:///{tmp_path / 'n.db'}")
    store.upgrade()
    try:
        chat = Channel("chat", http.url("chat"), "info", events=("order_filled",))
        hole = Channel("hole", black_hole.url(), "info", events=("order_filled",), timeout=0.2)
        notifier = Notifier([chat, hole], Templates(ROOT / "config" / "templates"),
                            delivery_log=StoreDeliveryLog(store), retries=1, backoff=0.01,
                            shutdown_grace=0.5)
        engine = make_engine(spx, year="2008")
        attach(engine.bus, notifier)
        result = engine.run()
        fills = {f.client_order_id for f in result.fills}
        assert len(fills) == len(result.fills) > 0
        http.wait_for(len(fills))
        notifier.close()
        repo = JobsRepo(store)
        delivered = repo.deliveries(channel="chat")
        assert {r.reference for r in delivered} == fills and {r.status for r in delivered} == {"sent"}
        hung = repo.deliveries(channel="hole")
        # One row per fill, none left pending, each failure or drop saying why.
        assert len(hung) == len(fills) and {r.reference for r in hung} == fills
        assert {r.status for r in hung} <= {"failed", "dropped"}
        assert all(r.error and r.finished_at is not None for r in hung)
        assert notifier.stats[("hole", "failed")] + notifier.stats[("hole", "dropped")] == len(fills)
    finally:
        http.close()
        store.close()
