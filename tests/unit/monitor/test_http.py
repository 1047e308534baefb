"""/health, /ready and /metrics over real HTTP on loopback."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd

from tests.unit.monitor.engine_helper import make_engine
from tradelab.monitor import HealthChecks, Metrics, database_check, monitor_engine
from tradelab.monitor.http import MonitorServer
from tradelab.store import Store


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_endpoints_answer_and_readiness_follows_the_checks() -> None:
    state = {"ok": True}
    checks = HealthChecks()
    checks.add("flag", lambda: (state["ok"], "flag"))
    checks.add("explodes", lambda: 1 / 0 if not state["ok"] else True)
    m = Metrics()
    m.job_finished("j", "failed", 1.0)
    with MonitorServer(m.registry, checks, port=0) as server:
        code, body = _get(server.url + "/health")
        assert code == 200 and json.loads(body)["status"] == "ok"
        code, body = _get(server.url + "/ready")
        assert code == 200 and [c["ok"] for c in json.loads(body)["checks"]] == [True, True]
        state["ok"] = False
        code, body = _get(server.url + "/ready")
        ready = json.loads(body)
        assert code == 503 and ready["status"] == "not_ready"
        assert {c["name"]: c["ok"] for c in ready["checks"]} == {"flag": False, "explodes": False}
        assert ready["checks"][1]["detail"].startswith("ZeroDivisionError")
        code, body = _get(server.url + "/metrics")
        assert code == 200 and b'tradelab_job_runs_total{job="j",status="failed"} 1.0' in body
        assert _get(server.url + "/nope")[0] == 404


def test_a_running_engine_serves_its_metrics(spx: pd.DataFrame, tmp_path: Path) -> None:
    from tradelab.config import load_config
    from tradelab.monitor.settings import MonitorSettings

    engine = make_engine(spx)
    store = Store(f"sqlite:///{tmp_path / 'h.db'}")
    store.upgrade()

    class Settings:  # monitor_engine reads [monitor] only; port 0 would mean "no server"
        monitor = MonitorSettings(port=_free_port(), check_interval=3600)
        home = load_config(environ={}).home

    mon = monitor_engine(engine, Settings(), Metrics())
    mon.checks.add("database", database_check(store))
    try:
        assert mon.server is not None
        result = engine.run()
        code, body = _get(mon.server.url + "/metrics")
        assert code == 200
        assert f'tradelab_bars_processed_total{{symbol="SPX"}} {float(result.bars)}'.encode() in body
        code, body = _get(mon.server.url + "/ready")
        assert code == 200, body
    finally:
        mon.close()
        store.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
