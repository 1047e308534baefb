"""Request metrics and the structured access log, as a pure ASGI middleware.

The access log names the route *template* (``/users/{username}/disable``),
never the raw path or query string, and never a header: no token, key or
password can reach it. Responses get ``Cache-Control: no-store`` (they carry
tokens and account data) and ``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from prometheus_client import Counter, Histogram

log = structlog.get_logger("tradelab.api")
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_EXTRA_HEADERS = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]


class HttpMetrics:
    """HTTP and auth counters on a monitor :class:`~tradelab.monitor.metrics.Metrics` registry."""

    def __init__(self, metrics: Any) -> None:
        self.metrics = metrics
        r = metrics.registry
        self.requests = Counter("tradelab_http_requests", "API requests", ["method", "route", "status"],
                                registry=r)
        self.latency = Histogram("tradelab_http_request_seconds", "API request latency", ["route"],
                                 buckets=_BUCKETS, registry=r)
        self.auth_events = Counter("tradelab_auth_events", "Auth audit events",
                                   ["event", "outcome"], registry=r)

    def on_audit(self, event: str, outcome: str) -> None:
        """Auditor listener: count every audit event."""
        self.auth_events.labels(event, outcome).inc()


class ObserveMiddleware:
    """Times each request, counts it by route template and status, logs one line."""

    def __init__(self, app: Any, metrics: HttpMetrics, access_log: bool = True) -> None:
        self.app, self.metrics, self.access_log = app, metrics, access_log

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), *_EXTRA_HEADERS]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route_obj = scope.get("route")
            route = getattr(route_obj, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(route).observe(elapsed)
            if self.access_log:
                state = scope.get("state") or {}
                who = state.get("principal")
                log.info("request", method=scope["method"], route=route, status=status,
                         ms=round(elapsed * 1000, 2), user=getattr(who, "actor", None))


__all__ = ["HttpMetrics", "ObserveMiddleware"]
