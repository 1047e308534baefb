"""Local delivery endpoints started by tests: an HTTP JSON receiver and an SMTP server.

Everything listens on 127.0.0.1 with an OS-assigned port; nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class HttpReceiver:
    """Collects apprise ``json://`` posts. ``fail_first`` answers 500 that many times;
    ``hang`` makes every request wait until :meth:`release` (a stuck channel)."""

    fail_first: int = 0
    hang: bool = False
    received: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    in_flight: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._released = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with owner._lock:
                    owner.requests += 1
                    n = owner.requests
                    owner.in_flight += 1
                try:
                    if owner.hang:
                        owner._released.wait(60)
                    code = 500 if n <= owner.fail_first else 200
                    if code == 200:
                        with owner._lock:
                            owner.received.append({"path": self.path, **json.loads(body or b"{}")})
                    self.send_response(code)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                finally:
                    with owner._lock:
                        owner.in_flight -= 1

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def wait_for(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Bounded wait until ``n`` notifications arrived; fails clearly otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= n:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {n} notification(s) within {timeout}s, got "
                             f"{len(self.received)}: {self.received}")

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


@dataclass
class SmtpReceiver:
    """An aiosmtpd server with plain-text AUTH (no TLS) that keeps every message."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        owner = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                owner.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                       "content": envelope.content.decode("utf-8", "replace")})
                return "250 OK"

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                          auth_data: Any) -> AuthResult:
            if isinstance(auth_data, LoginPassword):
                owner.logins.append((auth_data.login.decode(), auth_data.password.decode()))
            return AuthResult(success=True)

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port,
                                     authenticator=authenticator, auth_require_tls=False,
                                     auth_exclude_mechanism=["CRAM-MD5"])
        self.controller.start()

    def url(self, user: str, password: str) -> str:
        return (f"mailto://{user}:{password}@127.0.0.1:{self.port}"
                f"?from=bot@example.com&to=ops@example.com&mode=insecure")

    def wait_for(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages) >= n:
                return list(self.messages)
            time.sleep(0.02)
        raise AssertionError(f"expected {n} mail(s) within {timeout}s, got {len(self.messages)}")

    def close(self) -> None:
        self.controller.stop()


class BlackHole:
    """A TCP server on 127.0.0.1 that accepts every connection and never answers.

    What a hung webhook looks like from the client: the connection succeeds,
    the request is sent, and no response byte ever arrives.
    """

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._connected = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:  # closed
                return
            with self._connected:
                self._conns.append(conn)  # kept open, never read from or written to
                self._connected.notify_all()

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._conns)

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def wait_for_connections(self, n: int, timeout: float = 30.0) -> None:
        """Bounded wait until ``n`` connections were accepted."""
        with self._connected:
            if not self._connected.wait_for(lambda: len(self._conns) >= n, timeout):
                raise AssertionError(f"expected {n} connection(s) within {timeout}s, "
                                     f"got {len(self._conns)}")

    def close(self) -> None:
        with contextlib.suppress(OSError):  # wakes the blocked accept() on Linux
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        with self._lock:
            for c in self._conns:
                c.close()
        self._thread.join(5)


def closed_port() -> int:
    """A loopback port with nothing listening (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
