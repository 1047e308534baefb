"""The routes against seeded store data: reads, strategy switches, kill switch, jobs, docs."""

from __future__ import annotations

import pyotp

from tests.unit.api.helpers import Harness
from tradelab.store.auth_repo import disabled_strategies


def test_trading_reads_come_from_the_store(h: Harness) -> None:
    v = h.headers("viewer")
    assert h.client.get("/positions", headers=v).json() == [
        {"symbol": "SPY", "quantity": "10.0000000000", "avg_price": "470.5000000000",
         "realized_pnl": "0.0000000000"}]
    orders = h.client.get("/orders", headers=v).json()
    assert [(o["client_order_id"], o["status"]) for o in orders] == [("c-1", "filled")]
    fills = h.client.get("/fills", headers=v, params={"run_id": orders[0]["run_id"]}).json()
    assert [(f["fill_id"], f["price"]) for f in fills] == [("f-1", "470.5000000000")]
    eq = h.client.get("/equity", headers=v).json()
    assert eq[0]["equity"] == "99998.7500000000" and eq[0]["at"].startswith("2024-01-02T14:30")
    detail = h.client.get("/accounts/paper", headers=v).json()
    assert (detail["cash"], detail["positions"], detail["open_orders"]) == ("95293.7500000000", 1, 0)
    runs = h.client.get("/runs", headers=v).json()
    assert runs[0]["strategy"] == "sma_cross" and runs[0]["params"] == {"fast": 10, "slow": 30}
    assert h.client.get(f"/runs/{runs[0]['id']}", headers=v).json()["id"] == runs[0]["id"]
    assert h.client.get("/runs/999", headers=v).status_code == 404
    assert h.client.get("/positions", headers=v, params={"account": "nope"}).status_code == 404


def test_strategy_switch_is_persisted_for_the_engine(h: Harness) -> None:
    t = h.headers("trader")
    listed = h.client.get("/strategies", headers=t, params={"account": "paper"}).json()
    names = {s["name"] for s in listed}
    assert "sma_cross" in names and all(s["enabled"] for s in listed)
    sma = next(s for s in listed if s["name"] == "sma_cross")
    assert {p["name"] for p in sma["params"]} >= {"fast", "slow"}
    r = h.client.post("/strategies/sma_cross/disable", json={"account": "paper", "reason": "dd"},
                      headers=t)
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert r.json()["changed_by"] == "trader"
    assert disabled_strategies(h.store, "paper") == {"sma_cross"}
    assert h.client.post("/strategies/sma_cross/enable", headers=t).json()["enabled"] is True
    assert disabled_strategies(h.store, "paper") == frozenset()
    assert h.client.post("/strategies/nope/disable", headers=t).status_code == 404


def test_kill_switch_engage_by_trader_resume_by_admin(h: Harness) -> None:
    r = h.client.post("/risk/kill-switch/engage", headers=h.headers("trader"),
                      json={"account": "paper", "reason": "feed stale", "flatten": True})
    assert r.status_code == 200 and r.json()["engaged"] is True
    ks = h.store.kill_switch("paper")
    assert ks.engaged and ks.by == "trader" and ks.reason and ks.reason.endswith("feed stale")
    assert ks.reason.startswith("[flatten]")
    body = {"account": "paper", "reason": "reviewed"}
    assert h.client.post("/risk/kill-switch/resume", json=body,
                         headers=h.headers("trader")).status_code == 403
    assert h.store.kill_switch("paper").engaged
    r = h.client.post("/risk/kill-switch/resume", json=body, headers=h.headers("admin"))
    assert r.status_code == 200 and not h.store.kill_switch("paper").engaged
    status = h.client.get("/risk", headers=h.headers("viewer")).json()
    assert status["kill_switch"]["by"] == "admin" and status["events"][0]["rule"] == "max_position"
    audit = [(a.actor, a.detail["action"]) for a in h.auth.repo.audit(event="kill_switch")]
    assert audit == [("admin", "resume"), ("trader", "engage")]


def test_jobs_without_a_runner_list_history_and_refuse_triggers(h: Harness) -> None:
    assert h.client.get("/jobs", headers=h.headers("viewer")).json() == []
    r = h.client.post("/jobs/nightly/trigger", json={"parameters": {}}, headers=h.headers("trader"))
    assert r.status_code == 503 and "runner" in r.json()["detail"]
    assert h.client.post("/jobs/nightly/trigger", headers=h.headers("viewer")).status_code == 403


def test_metrics_count_requests_and_auth_events(h: Harness) -> None:
    v = h.headers("viewer")
    h.client.get("/positions", headers=v)
    h.login("viewer", "wrong password here")
    text = h.client.get("/metrics", headers=v).text
    assert 'tradelab_http_requests_total{method="GET",route="/positions",status="200"} 1.0' in text
    assert 'tradelab_auth_events_total{event="login_failed",outcome="failed"} 1.0' in text


def test_totp_over_the_api(h: Harness) -> None:
    v = h.headers("viewer")
    enrol = h.client.post("/auth/totp/enroll", headers=v).json()
    code = pyotp.TOTP(enrol["secret"]).at(h.clock.now())
    assert h.client.post("/auth/totp/verify", json={"code": code}, headers=v).status_code == 204
    assert h.client.get("/auth/me", headers=v).json()["totp_enabled"] is True
    r = h.login("viewer")
    assert r.status_code == 401 and "TOTP" in r.json()["detail"]
    h.advance(30)
    assert h.login("viewer", totp_code=pyotp.TOTP(enrol["secret"]).at(h.clock.now())).status_code == 200
    assert h.client.post("/auth/totp/enroll", headers=v).status_code == 409


def test_openapi_documents_tags_models_examples_and_security(h: Harness) -> None:
    spec = h.client.get("/openapi.json").json()
    tags = {t["name"] for t in spec["tags"]}
    assert {"auth", "admin", "trading", "strategies", "risk", "jobs", "system"} <= tags
    login = spec["paths"]["/auth/login"]["post"]
    assert set(login["responses"]) >= {"200", "401", "422", "429"}
    schemas = spec["components"]["schemas"]
    assert schemas["LoginRequest"]["properties"]["username"]["examples"] == ["alice"]
    assert "ValidationProblem" in schemas and "HTTPValidationError" not in schemas
    assert {"HTTPBearer", "APIKeyHeader"} <= set(spec["components"]["securitySchemes"])
    for path, ops in spec["paths"].items():
        for op in ops.values():
            assert op.get("tags"), path
            assert "200" in op["responses"] or "201" in op["responses"] \
                or "204" in op["responses"] or "202" in op["responses"], path
