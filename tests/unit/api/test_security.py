"""RBAC, authentication failures, expiry, revocation, lockout, rate limits, 422 bodies."""

from __future__ import annotations

import pytest

from tests.unit.api.helpers import PASSWORDS, Harness, build

READS = ["/positions", "/orders", "/fills", "/equity", "/accounts", "/accounts/paper", "/risk",
         "/runs", "/strategies", "/jobs", "/jobs/runs", "/auth/me", "/auth/sessions", "/metrics"]
TRADER_POSTS = [("/strategies/sma_cross/disable", {"account": "paper"}),
                ("/risk/kill-switch/engage", {"account": "paper", "reason": "test halt"})]
ADMIN_CALLS = [("GET", "/users", None), ("GET", "/apikeys", None), ("GET", "/audit", None),
               ("POST", "/users", {"username": "zed", "password": "zed-passphrase-42"}),
               ("POST", "/apikeys", {"name": "bot"}),
               ("POST", "/risk/kill-switch/resume", {"account": "paper", "reason": "reviewed"})]


@pytest.mark.parametrize("path", READS)
def test_every_read_needs_authentication(h: Harness, path: str) -> None:
    r = h.client.get(path)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    assert h.client.get(path, headers={"Authorization": "Bearer nonsense"}).status_code == 401
    assert h.client.get(path, headers=h.headers("viewer")).status_code == 200


def test_probes_are_open(h: Harness) -> None:
    assert h.client.get("/health").json() == {"status": "ok"}
    ready = h.client.get("/ready").json()
    assert ready["status"] == "ready" and "(head)" in ready["checks"]["schema"]


def test_roles_are_ordered(h: Harness) -> None:
    for path, body in TRADER_POSTS:
        assert h.client.post(path, json=body, headers=h.headers("viewer")).status_code == 403
        assert h.client.post(path, json=body, headers=h.headers("trader")).status_code == 200
        assert h.client.post(path, json=body, headers=h.headers("admin")).status_code == 200
    for method, path, body in ADMIN_CALLS:
        for name in ("viewer", "trader"):
            r = h.client.request(method, path, json=body, headers=h.headers(name))
            assert r.status_code == 403, (name, path, r.text)
        r = h.client.request(method, path, json=body, headers=h.headers("admin"))
        assert r.status_code in (200, 201), (path, r.text)
    denied = [a for a in h.auth.repo.audit(event="role_denied", limit=100)]
    assert {a.actor for a in denied} == {"viewer", "trader"}
    assert all(a.outcome == "denied" for a in denied)


def test_expired_access_token_is_refused(h: Harness) -> None:
    headers = h.headers("viewer")
    h.advance(15 * 60 + 10)
    r = h.client.get("/positions", headers=headers)
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def test_logout_revokes_access_and_refresh(h: Harness) -> None:
    tokens = h.login("viewer").json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert h.client.post("/auth/logout", headers=headers).status_code == 204
    assert h.client.get("/positions", headers=headers).status_code == 401
    r = h.client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401


def test_refresh_rotation_and_reuse_detection(h: Harness) -> None:
    first = h.login("trader").json()
    r = h.client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["session_id"] == first["session_id"]
    new_headers = {"Authorization": f"Bearer {second['access_token']}"}
    assert h.client.get("/auth/me", headers=new_headers).status_code == 200
    reuse = h.client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401 and "reuse" in reuse.json()["detail"]
    assert h.client.get("/auth/me", headers=new_headers).status_code == 401
    again = h.client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert again.status_code == 401


def test_session_listing_and_revocation(h: Harness) -> None:
    a = h.login("viewer").json()
    b = h.login("viewer").json()
    ha = {"Authorization": f"Bearer {a['access_token']}"}
    listed = h.client.get("/auth/sessions", headers=ha).json()
    assert {s["id"] for s in listed} == {a["session_id"], b["session_id"]}
    assert [s["current"] for s in listed if s["id"] == a["session_id"]] == [True]
    assert h.client.delete(f"/auth/sessions/{b['session_id']}", headers=ha).status_code == 204
    hb = {"Authorization": f"Bearer {b['access_token']}"}
    assert h.client.get("/auth/me", headers=hb).status_code == 401
    other = h.login("trader").json()["session_id"]
    assert h.client.delete(f"/auth/sessions/{other}", headers=ha).status_code == 404


def test_brute_force_locks_out_with_retry_after(h: Harness) -> None:
    codes = [h.login("viewer", "not the password").status_code for _ in range(5)]
    assert codes == [401, 401, 401, 401, 429]
    r = h.login("viewer")  # the right password, during the lock
    assert r.status_code == 429 and int(r.headers["retry-after"]) == 900
    h.advance(901)
    assert h.login("viewer").status_code == 200


def test_rate_limits_per_user_and_per_address(store_url: str) -> None:
    from tradelab.auth import ApiSettings

    api = ApiSettings(user_rate=1, user_burst=3, ip_rate=100, ip_burst=1000, login_rate=100,
                      login_burst=1000)
    h = build(store_url, api=api)
    with h.client:
        headers = h.headers("viewer")
        codes = [h.client.get("/positions", headers=headers).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = h.client.get("/positions", headers=headers)
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert h.client.get("/positions", headers=h.headers("trader")).status_code == 200
        h.timer.advance(1.0)
        assert h.client.get("/positions", headers=headers).status_code == 200
    h.store.close()
    api = ApiSettings(ip_rate=0.1, ip_burst=2, login_rate=100, login_burst=100)
    h = build(store_url.replace("store.db", "store2.db") if "sqlite" in store_url else store_url,
              api=api, users=False, seed=False)
    with h.client:
        codes = [h.client.get("/positions").status_code for _ in range(3)]
        assert codes == [401, 401, 429]
        assert int(h.client.get("/positions").headers["retry-after"]) == 10
    h.store.close()


def test_validation_errors_name_field_value_and_expectation(h: Harness) -> None:
    r = h.client.post("/users", json={"username": "bob", "password": "x" * 20, "role": "root"},
                      headers=h.headers("admin"))
    assert r.status_code == 422
    body = r.json()
    assert body["errors"] == [{"field": "body.role", "value": "root",
                               "expected": "Input should be 'viewer', 'trader' or 'admin'",
                               "type": "literal_error"}]
    r = h.client.get("/orders", params={"limit": 0}, headers=h.headers("viewer"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.limit"


def test_validation_errors_never_echo_secrets(h: Harness) -> None:
    secret = "p" * 2000  # too long: rejected by the schema
    r = h.client.post("/auth/login", json={"username": "viewer", "password": secret})
    assert r.status_code == 422 and secret[:50] not in r.text
    assert r.json()["errors"][0]["value"] == "**********"
    r = h.client.post("/auth/login", json={"username": "viewer", "password": 12345678})
    assert r.status_code == 422 and "12345678" not in r.text
    for body, kind in ((b"username=viewer&password=hunter2hunter2", "application/x-www-form-urlencoded"),
                       (b'["hunter2hunter2"]', "application/json"),
                       (b'{"username": "viewer", "password": "hunter2hunter2"', "application/json")):
        r = h.client.post("/auth/login", content=body, headers={"content-type": kind})
        assert r.status_code == 422 and "hunter2" not in r.text, r.text


def test_api_keys_authenticate_with_their_own_role(h: Harness) -> None:
    r = h.client.post("/apikeys", json={"name": "grafana", "role": "viewer", "owner": "trader"},
                      headers=h.headers("admin"))
    assert r.status_code == 201, r.text
    key, prefix = r.json()["key"], r.json()["prefix"]
    listed = h.client.get("/apikeys", headers=h.headers("admin")).json()
    assert key not in str(listed) and [k["prefix"] for k in listed] == [prefix]
    for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
        assert h.client.get("/positions", headers=headers).status_code == 200
        me = h.client.get("/auth/me", headers=headers).json()
        assert (me["username"], me["role"], me["api_key"]) == ("trader", "viewer", prefix)
        r = h.client.post("/risk/kill-switch/engage", json={"reason": "x"}, headers=headers)
        assert r.status_code == 403
    assert h.client.delete(f"/apikeys/{prefix}", headers=h.headers("admin")).status_code == 204
    assert h.client.get("/positions", headers={"X-API-Key": key}).status_code == 401
    too_high = h.client.post("/apikeys", json={"name": "x", "role": "admin", "owner": "trader"},
                             headers=h.headers("admin"))
    assert too_high.status_code == 403


def test_disabled_user_is_cut_off_immediately(h: Harness) -> None:
    headers = h.headers("trader")
    r = h.client.post("/users/trader/disable", headers=h.headers("admin"))
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert h.client.get("/positions", headers=headers).status_code == 401
    assert h.login("trader").status_code == 401
    assert h.client.post("/users/admin/disable", headers=h.headers("admin")).status_code == 409


def test_passwords_never_leave_the_server(h: Harness) -> None:
    r = h.client.get("/users", headers=h.headers("admin"))
    text = r.text
    assert all(pw not in text for pw in PASSWORDS.values()) and "argon2" not in text
