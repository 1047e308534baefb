"""Oversized request bodies against a real uvicorn server in its own process.

Three bodies that declare 300 MB each, and one of 300 MB sent without a length
(chunked), go to the unauthenticated ``POST /auth/login``. The client streams
them from a generator, so the test itself stays small. The server must answer
413 and close the connection without reading them: its resident memory
(psutil) grows by far less than one body, and the client gets to send only a
small part of what it offered.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.integration.api_proc import ApiProcess, serve
from tests.unit.api.helpers import PASSWORDS

MB = 1024 * 1024
BODY = 300 * MB
LIMIT = 1024 * 1024  # the default [api] max_body_bytes


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[ApiProcess]:
    with serve(f"sqlite:///{tmp_path / 'api.db'}", tmp_path / "server.log") as proc:
        yield proc


class Offered:
    """A 300 MB body as a generator of 1 MB chunks, counting what was taken."""

    def __init__(self, size: int) -> None:
        self.size, self.taken = size, 0

    def __iter__(self) -> Iterator[bytes]:
        chunk = b"x" * MB
        while self.taken < self.size:
            self.taken += len(chunk)
            yield chunk


def test_oversized_bodies_are_refused_unread_and_memory_stays_flat(server: ApiProcess) -> None:
    proc = psutil.Process(server.pid)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        # Warm up: the first requests load code and fill caches, which is not growth.
        for _ in range(3):
            ok = client.post("/auth/login", json={"username": "viewer",
                                                  "password": PASSWORDS["viewer"]})
            assert ok.status_code == 200, ok.text
        before = proc.memory_info().rss
        offers = []
        for declared in (True, True, True, False):
            body = Offered(BODY)
            headers = {"content-type": "application/json"}
            if declared:
                headers["content-length"] = str(BODY)
            r = client.post("/auth/login", content=iter(body), headers=headers)
            assert r.status_code == 413, r.text
            assert r.json() == {"detail": f"request body too large: at most {LIMIT} bytes"}
            assert r.headers["connection"] == "close"
            offers.append(body.taken)
        grown = proc.memory_info().rss - before
        # The server still answers normally afterwards.
        assert client.get("/health").json() == {"status": "ok"}
    assert grown < 50 * MB, f"RSS grew by {grown / MB:.0f} MB"
    # The client could push only what socket buffers hold before the server hung up.
    assert all(taken < 64 * MB for taken in offers), [t // MB for t in offers]
