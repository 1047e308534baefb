"""Structured JSON logs carry bound job/run/strategy/order ids and never show secrets."""

from __future__ import annotations

import pandas as pd
import structlog

from tests.unit.monitor.engine_helper import make_engine
from tests.unit.monitor.logcapture import json_log_records
from tradelab.monitor.logging import bind_from_env, bind_ids, log_engine_events


def test_bound_ids_are_merged_into_every_line() -> None:
    log = structlog.get_logger("t")
    with json_log_records() as records:
        with bind_ids(job="nightly", job_run_id=42, strategy=None):
            log.info("inside")
        log.info("outside")
        lines = records()
    inside, outside = lines
    assert (inside["job"], inside["job_run_id"]) == ("nightly", 42)
    assert "strategy" not in inside and "job" not in outside


def test_job_ids_come_from_the_environment_in_a_kernel() -> None:
    with json_log_records() as records:
        found = bind_from_env({"TRADELAB_JOB": "j1", "TRADELAB_JOB_RUN_ID": "7", "OTHER": "x"})
        try:
            structlog.get_logger("t").info("in_kernel")
        finally:
            structlog.contextvars.unbind_contextvars("job", "job_run_id")
        [line] = records()
    assert found == {"job": "j1", "job_run_id": "7"}
    assert (line["job"], line["job_run_id"]) == ("j1", "7")


def test_engine_events_are_logged_with_order_strategy_and_run_ids(spx: pd.DataFrame) -> None:
    engine = make_engine(spx, max_position="1")
    log_engine_events(engine.bus)
    with json_log_records() as records, bind_ids(job="paper-job"):
        engine.run()
        lines = records()
    orders = [r for r in lines if r["event"] == "order_transition"]
    risks = [r for r in lines if r["event"] == "risk_alert"]
    assert orders and risks
    assert all(r["client_order_id"].startswith("tl-") and r["strategy"] == "sma_cross"
               and r["run_id"] == "memory" and r["job"] == "paper-job" for r in orders)
    assert {r["to_state"] for r in orders} >= {"new", "rejected"}
    assert risks[0]["rule"] == "max_position" and risks[0]["client_order_id"] in {
        r["client_order_id"] for r in orders}
