"""The request guard: 413 and 429 are answered before a byte of the body is read.

The app is called directly as ASGI with a ``receive`` that counts its calls,
so "not read" is observed, not inferred: a refused request never pulls the
body at all, and a chunked one is cut off at the limit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.unit.api.helpers import PASSWORDS, UNLIMITED, Harness, build
from tradelab.auth import ApiSettings

LIMIT = 4096


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any
    reads: int                      # calls to receive()
    read_bytes: int                 # body bytes handed to the app
    sent: list[dict[str, Any]] = field(default_factory=list)


def call(app: Any, method: str, path: str, chunks: Sequence[bytes] = (), *,
         headers: dict[str, str] | None = None, declare: int | None = None) -> Answer:
    """One request straight into the ASGI app; ``declare`` sets Content-Length."""
    pending = list(chunks)
    reads = read_bytes = 0
    sent: list[dict[str, Any]] = []
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if declare is not None:
        raw.append((b"content-length", str(declare).encode()))
    else:
        raw.append((b"transfer-encoding", b"chunked"))
    raw.append((b"content-type", b"application/json"))

    async def receive() -> dict[str, Any]:
        nonlocal reads, read_bytes
        reads += 1
        if pending:
            chunk = pending.pop(0)
            read_bytes += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": raw,
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80), "state": {}}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(start["status"], {k.decode(): v.decode() for k, v in start["headers"]},
                  json.loads(body) if body else None, reads, read_bytes, sent)


@contextmanager
def harness(store_url: str, **limits: Any) -> Iterator[Harness]:
    """The test app with 4 KiB bodies and the given ``[api]`` limits (others unlimited)."""
    h = build(store_url, api=ApiSettings.model_validate(
        {**UNLIMITED.model_dump(), "max_body_bytes": LIMIT, **limits}))
    try:
        with h.client:
            yield h
    finally:
        h.store.close()


@pytest.fixture()
def small(store_url: str) -> Iterator[Harness]:
    """An app accepting bodies up to 4 KiB, without rate limits."""
    with harness(store_url) as h:
        yield h


@pytest.mark.parametrize(("method", "path"), [("POST", "/auth/login"), ("GET", "/health"),
                                              ("POST", "/users"), ("GET", "/positions"),
                                              ("PUT", "/no/such/route")])
def test_a_declared_oversized_body_is_refused_unread(small: Harness, method: str,
                                                     path: str) -> None:
    a = call(small.app, method, path, [b"x" * 1024], declare=300 * 1024 * 1024,
             headers=small.headers("admin"))
    assert a.status == 413 and a.reads == 0
    assert a.headers["connection"] == "close"
    assert a.body == {"detail": f"request body too large: at most {LIMIT} bytes"}


def test_a_chunked_body_is_cut_off_at_the_limit(small: Harness) -> None:
    chunks = [b"x" * 1024] * 1000  # 1 MB, never declared
    a = call(small.app, "POST", "/auth/login", chunks)
    assert a.status == 413 and a.headers["connection"] == "close"
    assert a.body["detail"].startswith("request body too large")
    assert LIMIT < a.read_bytes <= LIMIT + 1024 and a.reads <= LIMIT // 1024 + 1


def test_bodies_within_the_limit_are_served_chunked_or_not(small: Harness) -> None:
    body = json.dumps({"username": "viewer", "password": PASSWORDS["viewer"]}).encode()
    pieces = [body[i:i + 7] for i in range(0, len(body), 7)]
    assert call(small.app, "POST", "/auth/login", pieces).status == 200
    assert call(small.app, "POST", "/auth/login", [body], declare=len(body)).status == 200
    exact = json.dumps({"username": "viewer", "password": "p" * (LIMIT - 40)}).encode()
    exact += b" " * (LIMIT - len(exact))  # exactly at the limit: allowed (then 422 by schema)
    assert call(small.app, "POST", "/auth/login", [exact], declare=LIMIT).status == 422


def test_the_login_limit_answers_before_the_body_is_read(store_url: str) -> None:
    with harness(store_url, login_rate=0.01, login_burst=1) as h:
        body = json.dumps({"username": "viewer", "password": PASSWORDS["viewer"]}).encode()
        assert call(h.app, "POST", "/auth/login", [body], declare=len(body)).status == 200
        a = call(h.app, "POST", "/auth/login", [body], declare=len(body))
        assert (a.status, a.reads) == (429, 0)
        assert int(a.headers["retry-after"]) == 100
        # Even an oversized body: the rate limit answers first, still unread.
        big = call(h.app, "POST", "/auth/refresh", [b"x"], declare=10**9)
        assert (big.status, big.reads) == (429, 0)


def test_the_per_caller_limit_answers_before_the_body_is_read(store_url: str) -> None:
    with harness(store_url, user_rate=0.01, user_burst=2) as h:
        viewer = h.headers("viewer")
        body = json.dumps({"account": "paper"}).encode()
        path = "/strategies/sma_cross/disable"
        codes = [call(h.app, "POST", path, [body], declare=len(body), headers=viewer)
                 for _ in range(3)]
        assert [(a.status, a.reads > 0) for a in codes] == [(403, True), (403, True), (429, False)]
        # Another user and the viewer's API key have buckets of their own; a forged
        # token gets none (and a 401).
        assert call(h.app, "GET", "/positions", headers=h.headers("trader")).status == 200
        key = h.client.post("/apikeys", json={"name": "bot", "owner": "viewer"},
                            headers=h.headers("admin")).json()["key"]
        assert call(h.app, "GET", "/positions", headers={"X-API-Key": key}).status == 200
        forged = {"Authorization": viewer["Authorization"][:-4] + "AAAA"}
        assert call(h.app, "GET", "/positions", headers=forged).status == 401
        assert call(h.app, "GET", "/positions", headers=viewer).status == 429


def test_the_address_limit_covers_every_route_but_the_probes(store_url: str) -> None:
    with harness(store_url, ip_rate=0.01, ip_burst=1) as h:
        assert call(h.app, "GET", "/no/such/route").status == 404
        a = call(h.app, "POST", "/auth/login", [b"{}"], declare=2)
        assert (a.status, a.reads) == (429, 0)
        assert call(h.app, "GET", "/openapi.json").status == 429
        assert call(h.app, "GET", "/health").status == 200
        assert call(h.app, "GET", "/ready").status == 200


def test_max_body_bytes_defaults_to_one_mebibyte() -> None:
    assert ApiSettings().max_body_bytes == 1024 * 1024
