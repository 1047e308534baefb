"""``/health``, ``/ready`` and ``/metrics`` over HTTP from a running engine or scheduler.

A small stdlib :class:`~http.server.ThreadingHTTPServer` in a daemon thread:
no framework, nothing on the trading path. ``/health`` answers 200 while the
process serves requests (liveness); ``/ready`` runs the readiness checks and
answers 503 when any fails; ``/metrics`` is the app's private Prometheus
registry in the text exposition format.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tradelab.monitor.health import HealthChecks


class MonitorServer:
    """Serves the monitoring endpoints.

    Parameters
    ----------
    registry
        A :class:`~prometheus_client.CollectorRegistry` (``None``: ``/metrics`` is 404).
    checks
        Readiness checks (``None``: always ready).
    host, port
        Where to listen; port 0 binds a free port (see :attr:`port` after :meth:`start`).
        Whether to serve at all is decided by the caller (``[monitor] port = 0`` means off).
    """

    def __init__(self, registry: Any = None, checks: HealthChecks | None = None,
                 host: str = "127.0.0.1", port: int = 0, component: str = "tradelab") -> None:
        self.registry, self.checks, self.component = registry, checks, component
        self.started = time.time()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # scrapes every few seconds would flood stderr

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        # str() changes nothing here: a TCP server's host is a str (typeshed also allows
        # the bytes of AF_UNIX addresses).
        host = str(self._server.server_address[0])
        return f"http://{host}:{self.port}"

    def start(self) -> MonitorServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name="monitor-http",
                                            kwargs={"poll_interval": 0.2}, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=2.0)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> MonitorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        path = req.path.split("?", 1)[0].rstrip("/") or "/"
        if path == "/health":
            self._json(req, 200, {"status": "ok", "component": self.component,
                                  "uptime_s": round(time.time() - self.started, 3)})
        elif path == "/ready":
            results = self.checks.run() if self.checks is not None else []
            ready = all(r.ok for r in results)
            self._json(req, 200 if ready else 503, {
                "status": "ready" if ready else "not_ready", "component": self.component,
                "checks": [{"name": r.name, "ok": r.ok, "detail": r.detail} for r in results]})
        elif path == "/metrics" and self.registry is not None:
            body = generate_latest(self.registry)
            self._send(req, 200, body, CONTENT_TYPE_LATEST)
        else:
            self._json(req, 404, {"error": "not found", "paths": ["/health", "/ready", "/metrics"]})

    def _json(self, req: BaseHTTPRequestHandler, code: int, obj: Any) -> None:
        self._send(req, code, json.dumps(obj, default=str).encode(), "application/json")

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, code: int, body: bytes, ctype: str) -> None:
        req.send_response(code)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)
