"""The API behind a real uvicorn server: secrets never reach a log line.

Everything secret the test handles (passwords right and wrong, one typed into
the user-name field, access and refresh tokens, an API key, a TOTP seed, the
JWT secret) is collected, then
searched for in every structlog JSON line and every stdlib/uvicorn log
record written while the server ran at DEBUG level.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import uvicorn

from tests.unit.api.helpers import PASSWORDS, SECRET, Harness, build
from tradelab.monitor.logging import configure_logging


class Records(logging.Handler):
    """Keeps every formatted stdlib record (uvicorn, fastapi, ...)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.lines.append(text)


@pytest.fixture()
def logs() -> Iterator[tuple[io.StringIO, Records]]:
    saved = structlog.get_config()
    buffer, records = io.StringIO(), Records()
    configure_logging("DEBUG", json_logs=True, stream=buffer)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(records)
    root.setLevel(logging.DEBUG)
    try:
        yield buffer, records
    finally:
        root.removeHandler(records)
        root.setLevel(old_level)
        structlog.configure(**saved)


@pytest.fixture()
def server(tmp_path: Path, logs: Any) -> Iterator[tuple[str, Harness]]:
    h = build(f"sqlite:///{tmp_path / 'api.db'}")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(h.app, log_level="debug", log_config=None, access_log=True,
                            lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", h
    finally:
        srv.should_exit = True
        thread.join(10)
        sock.close()
        h.store.close()


def test_no_secret_reaches_any_log(server: tuple[str, Harness], logs: Any) -> None:
    import pyotp

    base, h = server
    buffer, records = logs
    secrets_seen: list[str] = [SECRET, *PASSWORDS.values()]
    with httpx.Client(base_url=base, timeout=10) as c:
        wrong = "wrong-but-plausible-password-77"
        secrets_seen.append(wrong)
        assert c.post("/auth/login", json={"username": "viewer", "password": wrong}).status_code == 401
        # A password typed into the name field: an unknown name is recorded as a marker.
        typed = "tr0ub4dor&3-correct-staple"
        secrets_seen.append(typed)
        assert c.post("/auth/login", json={"username": typed, "password": wrong}).status_code == 401
        long_pw = "Z" * 1500
        secrets_seen.append(long_pw[:40])
        assert c.post("/auth/login", json={"username": "viewer", "password": long_pw}).status_code == 422
        tokens = c.post("/auth/login", json={"username": "admin",
                                             "password": PASSWORDS["admin"]}).json()
        secrets_seen += [tokens["access_token"], tokens["refresh_token"]]
        admin = {"Authorization": f"Bearer {tokens['access_token']}"}
        fresh = c.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).json()
        secrets_seen += [fresh["access_token"], fresh["refresh_token"]]
        admin = {"Authorization": f"Bearer {fresh['access_token']}"}
        reuse = c.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert reuse.status_code == 401
        tokens = c.post("/auth/login", json={"username": "admin",
                                             "password": PASSWORDS["admin"]}).json()
        secrets_seen += [tokens["access_token"], tokens["refresh_token"]]
        admin = {"Authorization": f"Bearer {tokens['access_token']}"}
        key = c.post("/apikeys", json={"name": "ci", "role": "viewer"}, headers=admin).json()["key"]
        secrets_seen.append(key)
        assert c.get("/positions", headers={"X-API-Key": key}).status_code == 200
        bad_key = key[:-4] + "AAAA"
        secrets_seen.append(bad_key)
        assert c.get("/positions", headers={"X-API-Key": bad_key}).status_code == 401
        enrol = c.post("/auth/totp/enroll", headers=admin).json()
        secrets_seen.append(enrol["secret"])
        code = pyotp.TOTP(enrol["secret"]).at(h.clock.now())
        assert c.post("/auth/totp/verify", json={"code": code}, headers=admin).status_code == 204
        new_user = {"username": "newbie", "password": "newbie-passphrase-99", "role": "viewer"}
        secrets_seen.append(new_user["password"])
        assert c.post("/users", json=new_user, headers=admin).status_code == 201
        assert c.get("/metrics", headers=admin).status_code == 200
        assert c.post("/auth/logout", headers=admin).status_code == 204
        assert c.get("/positions", headers=admin).status_code == 401
    time.sleep(0.2)  # let the server thread finish writing its last lines
    structured = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    assert len(structured) >= 20 and all("event" in entry for entry in structured)
    assert len(records.lines) >= 10  # uvicorn's own access and error lines were captured
    haystack = buffer.getvalue() + "\n".join(records.lines)
    leaked = [s[:12] + "..." for s in secrets_seen if s in haystack]
    assert leaked == []
