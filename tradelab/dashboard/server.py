"""The Panel (bokeh/tornado) server behind ``tradelab dashboard``: one app per browser session."""

from __future__ import annotations

from typing import Any

import panel as pn
import structlog

from tradelab.dashboard.app import DashboardApp
from tradelab.dashboard.login import UserSession
from tradelab.dashboard.services import DashboardServices

log = structlog.get_logger("tradelab.dashboard")


def _client() -> tuple[str | None, str | None]:
    """The browser's address and user agent (for the audit log), when served."""
    ctx = getattr(pn.state.curdoc, "session_context", None)
    request = getattr(ctx, "request", None)
    if request is None:
        return None, None
    headers = getattr(request, "headers", {}) or {}
    return getattr(request, "remote_ip", None), headers.get("User-Agent")


def session_factory(services: DashboardServices, *, poll_ms: int = 300,
                    account: str | None = None) -> Any:
    """The per-session page builder ``pn.serve`` calls for each new browser session."""
    def page() -> Any:
        pn.extension("tabulator")  # its JS must ship with the page: tables appear after login
        ip, agent = _client()
        app = DashboardApp(services, account=account, poll_ms=poll_ms,
                           session=UserSession(services.auth, ip=ip, user_agent=agent))

        def closed(_ctx: Any) -> None:  # tab closed or session expired: end the login too
            app.stop_polling()
            app.session.logout()

        pn.state.on_session_destroyed(closed)
        return app.root

    return page


def serve(services: DashboardServices, *, host: str = "127.0.0.1", port: int = 5006,
          poll_ms: int = 300, account: str | None = None, show: bool = False,
          threaded: bool = False, start: bool = True) -> Any:
    """Serve the dashboard at ``http://host:port/`` (blocks unless ``threaded``).

    Returns the bokeh server (or, ``threaded``, the thread running it: call
    ``.stop()`` to end it).
    """
    origins = sorted({f"{host}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"})
    log.info("dashboard_serving", host=host, port=port)
    return pn.serve(session_factory(services, poll_ms=poll_ms, account=account), address=host,
                    port=port, show=show, start=start, threaded=threaded,
                    title="tradelab dashboard", websocket_origin=origins,
                    check_unused_sessions=2000, unused_session_lifetime=10000,
                    admin=False, verbose=False)


__all__ = ["serve", "session_factory"]
