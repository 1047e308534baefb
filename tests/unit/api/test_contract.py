"""The OpenAPI document says what the API does: statuses, bounds, strict types, ``Allow``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.api.helpers import Harness, auth_settings, build

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
PROBES = {"/health", "/ready"}


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            yield path, method, op


def test_every_refusal_the_guard_and_handlers_give_is_documented(h: Harness) -> None:
    spec = h.client.get("/openapi.json").json()
    for path, method, op in _operations(spec):
        codes = set(op["responses"])
        assert "413" in codes, (method, path)
        assert ("429" in codes) == (path not in PROBES), (method, path)
        if "requestBody" in op:
            assert {"400", "422"} <= codes, (method, path)
    paths = spec["paths"]
    assert "409" in paths["/auth/logout"]["post"]["responses"]
    assert "409" in paths["/users/{username}/disable"]["post"]["responses"]
    assert "403" in paths["/auth/totp/verify"]["post"]["responses"]
    assert "403" in paths["/apikeys"]["post"]["responses"]


def test_configured_bounds_are_served_and_enforced(store_url: str) -> None:
    h = build(store_url, auth=auth_settings(api_key_max_ttl_days=30, api_key_ttl_days=7,
                                            password_min_length=16))
    with h.client:
        models = h.client.get("/openapi.json").json()["components"]["schemas"]
        ttl = next(b for b in models["ApiKeyCreate"]["properties"]["ttl_days"]["anyOf"]
                   if b.get("type") == "integer")
        assert (ttl["minimum"], ttl["maximum"]) == (1, 30)
        assert models["UserCreate"]["properties"]["password"]["minLength"] == 16
        admin = h.headers("admin")
        assert h.client.post("/apikeys", json={"name": "a", "ttl_days": 31},
                             headers=admin).status_code == 422
        assert h.client.post("/apikeys", json={"name": "a", "ttl_days": 30},
                             headers=admin).status_code == 201
        short = {"username": "zed", "password": "x" * 15}
        assert h.client.post("/users", json=short, headers=admin).status_code == 422
        assert h.client.post("/users", json={**short, "password": "x" * 16},
                             headers=admin).status_code == 201
    h.store.close()


@pytest.mark.parametrize(("path", "body"), [
    ("/risk/kill-switch/engage", {"reason": "r", "flatten": 0}),
    ("/risk/kill-switch/engage", {"reason": "r", "flatten": "true"}),
    ("/apikeys", {"name": "a", "ttl_days": "90"}),
    ("/apikeys", {"name": "a", "ttl_days": True}),
    ("/users", {"username": "zed", "password": " " * 20}),
    ("/jobs/nightly/trigger", {"parameters": {"symbol": "SPX"}}),
])
def test_requests_outside_the_schema_are_refused(h: Harness, path: str, body: Any) -> None:
    r = h.client.post(path, json=body, headers=h.headers("admin"))
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"].startswith("body.")


def test_requests_inside_the_schema_are_served(h: Harness) -> None:
    admin = h.headers("admin")
    r = h.client.post("/apikeys", json={"name": "a", "ttl_days": 90.0}, headers=admin)
    assert r.status_code == 201, r.text  # JSON Schema's integer admits 90.0
    r = h.client.post("/risk/kill-switch/engage", json={"reason": "r", "flatten": False},
                      headers=admin)
    assert r.status_code == 200 and r.json()["engaged"] is True


def test_well_formed_requests_refused_by_state_get_4xx_other_than_422(h: Harness) -> None:
    admin = h.headers("admin")
    key = h.client.post("/apikeys", json={"name": "a"}, headers=admin).json()["key"]
    r = h.client.post("/auth/logout", headers={"X-API-Key": key})
    assert r.status_code == 409 and "no session" in r.json()["detail"]
    h.client.post("/auth/totp/enroll", headers=admin)
    r = h.client.post("/auth/totp/verify", json={"code": "000000"}, headers=admin)
    assert r.status_code == 403 and "TOTP" in r.json()["detail"]


def test_405_lists_every_method_of_the_path(h: Harness) -> None:
    spec = h.client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        url = path.replace("{", "").replace("}", "")  # any value for the parameters
        declared = {m.upper() for m in ops}
        for method in set(METHODS) - declared:
            r = h.client.request(method, url)
            assert r.status_code == 405, (method, path, r.status_code)
            allow = {m.strip() for m in r.headers["allow"].split(",")}
            assert allow - {"HEAD"} == declared, (method, path, allow)
