"""The Panel (bokeh/tornado) server behind ``tradelab dashboard``: one app per browser session.

A login survives a reload and is shared by the tabs of one browser (see
:mod:`.sessions`): the tokens stay in :attr:`DashboardServices.sessions`; the
browser holds only a signed, HttpOnly, SameSite=Strict cookie naming its
entry. After a login over the websocket the page fetches
``/session?ticket=...`` (:class:`TicketHandler` sets the cookie) and shows the
dashboard in place: no second page, BokehJS load and websocket after the login
(that was most of the time from the click to the dashboard); "Log out" goes to
``/logout`` (:class:`LogoutHandler` clears it).
The cookie is kept out of Bokeh's session token, which is embedded in the
page where scripts could read it.

Start-up: the server binds its port and answers before anything only a
logged-in page needs is imported (the views, pandas, Bokeh's plotting); once it
answers it calls ``on_ready`` with its URL (``tradelab dashboard --ready-fd``
passes that on to a supervisor or a test). Those imports happen right after, in a
thread (:func:`~tradelab.dashboard.app.preload`), while the first page is shown and
its user types a password. ``GET /health`` answers as soon as the server does,
without building a page.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import panel as pn
import structlog
import tornado.web

from tradelab.auth.errors import InvalidCredentials
from tradelab.dashboard.app import DashboardApp, preload
from tradelab.dashboard.login import UserSession
from tradelab.dashboard.services import DashboardServices
from tradelab.dashboard.sessions import COOKIE

log = structlog.get_logger("tradelab.dashboard")
SESSION_PATH, LOGOUT_PATH, HEALTH_PATH = "/session", "/logout", "/health"


def _request() -> Any:
    ctx = getattr(pn.state.curdoc, "session_context", None)
    return getattr(ctx, "request", None)


def _client() -> tuple[str | None, str | None]:
    """The browser's address and user agent (for the audit log), when served."""
    request = _request()
    if request is None:
        return None, None
    headers = getattr(request, "headers", {}) or {}
    return getattr(request, "remote_ip", None), headers.get("User-Agent")


def _session_cookie() -> str | None:
    """The login cookie of the HTTP request that opened this Bokeh session.

    Read from tornado's own request: the server keeps the cookie (and the
    ``Cookie`` header) out of the session token Bokeh embeds in the page.
    """
    request = _request()
    raw = getattr(request, "_request", None)  # bokeh's proxy → the tornado request
    for source in (getattr(raw, "cookies", None), getattr(request, "cookies", None)):
        if not source or COOKIE not in source:
            continue
        value = source[COOKIE]
        return value if isinstance(value, str) else getattr(value, "value", None)
    return None


def _navigator() -> Any:
    """A hidden widget: setting its value to a same-site path sends the browser there,
    except ``/session?ticket=...``, which the page fetches (same-origin, the redirect not
    followed) so that the cookie is set while the page stays."""
    nav = pn.widgets.TextInput(value="", visible=False, name="navigate")
    nav.jscallback(value=(
        "const to = cb_obj.value;"
        "if (!to || !to.startsWith('/')) { return; }"
        f"if (to.startsWith('{SESSION_PATH}?')) {{"
        " fetch(to, {credentials: 'same-origin', redirect: 'manual', cache: 'no-store'});"
        "} else { window.location.assign(to); }"))
    return nav


class _Preload:
    """Runs :func:`~tradelab.dashboard.app.preload` once, in a thread of its own.

    Started as soon as the server answers (and, should that not have happened, when a
    page has loaded): the imports (pandas, Bokeh's plotting, the store's reads, about
    0.7 s of CPU) then overlap the first page and the typing of a password instead of
    holding up the click on "Log in", which a login right after the form appeared (a
    password manager, a test) otherwise waited behind. In a thread, not on the IO loop,
    so that readiness and the login form do not wait for it either.

    Safe in a thread because what it imports does not include HoloViews (a test checks
    it): Panel imports HoloViews modules on the IO loop as soon as ``holoviews`` is in
    ``sys.modules``, and two threads importing HoloViews at once fail ("partially
    initialized module"). Anything else a page imports meanwhile waits for the module's
    import lock, as imports in threads do.
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="dashboard-preload",
                                                daemon=True)
                self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the imports (tests); returns at once if they were never started."""
        if self._thread is not None:
            self._thread.join(timeout)

    @staticmethod
    def _run() -> None:
        try:
            preload()
        except Exception as exc:  # the first page after a login imports them itself
            log.warning("dashboard_preload_failed", error=type(exc).__name__)


def session_factory(services: DashboardServices, *, poll_ms: int = 300,
                    account: str | None = None, warm: _Preload | None = None) -> Any:
    """The per-session page builder ``pn.serve`` calls for each new browser session.

    ``warm`` (default: a new one) is started when a page has loaded, if not before.
    """
    registry = services.sessions
    warm = warm or _Preload()

    def page() -> Any:
        pn.extension("tabulator")  # its JS must ship with the page: tables appear after login
        ip, agent = _client()
        sid = services.cookies.verify(_session_cookie())
        session = registry.attach(sid) if sid else None
        if session is not None:
            try:
                session.current()  # re-checked against the store (rotated if expired)
            except InvalidCredentials:  # revoked, expired, user disabled: log in again
                registry.drop(sid)
                session = None
        attached: list[str] = [sid] if sid is not None and session is not None else []
        nav = _navigator()

        def logged_in(user: UserSession) -> None:  # form login: remember it for the browser
            new = registry.add(user)
            registry.attach(new)
            attached.append(new)
            ticket = registry.issue_ticket(new, ip=user.ip)
            nav.value = f"{SESSION_PATH}?ticket={ticket}"

        def logged_out(_user: UserSession, by_user: bool) -> None:
            for old in attached:
                registry.drop(old)
            attached.clear()
            if by_user:  # revoked elsewhere: the cookie may already name a newer login
                nav.value = LOGOUT_PATH

        app = DashboardApp(services, account=account, poll_ms=poll_ms,
                           session=session or UserSession(services.auth, ip=ip,
                                                          user_agent=agent),
                           on_login=logged_in, on_logout=logged_out)
        if session is not None:
            app.resume()

        def closed(_ctx: Any) -> None:  # a reload or a closed tab: the login stays
            app.stop_polling()
            for old in attached:
                registry.detach(old)

        pn.state.on_session_destroyed(closed)
        pn.state.onload(warm.start)
        return pn.Column(app.root, nav, sizing_mode="stretch_width")

    return page


class _Handler(tornado.web.RequestHandler):
    def initialize(self, services: DashboardServices) -> None:
        self.services = services

    def _back_home(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("Referrer-Policy", "no-referrer")
        self.redirect("/")


class TicketHandler(_Handler):
    """``GET /session?ticket=...``: trade a one-time ticket for the login cookie."""

    def get(self) -> None:
        ticket = self.get_query_argument("ticket", None)
        sid = self.services.sessions.redeem(ticket, ip=self.request.remote_ip)
        site = self.request.headers.get("Sec-Fetch-Site")
        if sid is not None and site not in (None, "same-origin", "none"):
            sid = None  # only the dashboard's own page may set its login (no login CSRF)
        if sid is not None:
            self.set_cookie(COOKIE, self.services.cookies.sign(sid), path="/", httponly=True,
                            samesite="Strict", secure=self.request.protocol == "https",
                            max_age=int(self.services.cookies.max_age))
        else:
            log.info("dashboard_ticket_rejected", ip=self.request.remote_ip)
        self._back_home()


class LogoutHandler(_Handler):
    """``GET /logout``: end the browser's login (revoked in the store) and clear its cookie."""

    def get(self) -> None:
        sid = self.services.cookies.verify(self.get_cookie(COOKIE))
        session = self.services.sessions.drop(sid)
        if session is not None:
            session.logout()  # audited by AuthService; a no-op if the page logged out already
        self.clear_cookie(COOKIE, path="/", httponly=True, samesite="Strict",
                          secure=self.request.protocol == "https")
        self._back_home()


class HealthHandler(tornado.web.RequestHandler):
    """``GET /health``: ``{"status": "ok", "sessions": n}`` (open Bokeh sessions).

    Cheap (no page is built, nothing is read from the store): it answers as soon as
    the server does, which is what start-up checks and tests wait for. The session
    count lets a test wait for a closed page's session to be discarded.
    """

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        get_sessions = getattr(self.application, "get_sessions", None)  # BokehTornado
        sessions = len(get_sessions("/")) if get_sessions is not None else 0
        self.finish(json.dumps({"status": "ok", "sessions": sessions}))


def extra_patterns(services: DashboardServices) -> list[tuple[str, type, dict[str, Any]]]:
    """The tornado routes next to the Panel app (for ``pn.serve(extra_patterns=...)``)."""
    return [(SESSION_PATH, TicketHandler, {"services": services}),
            (LOGOUT_PATH, LogoutHandler, {"services": services}),
            (HEALTH_PATH, HealthHandler, {})]


def _answering(on_ready: Callable[[str], None] | None, url: str) -> None:
    """Runs on the server's IO loop once it is running, i.e. once requests are served."""
    log.info("dashboard_ready", url=url)
    if on_ready is not None:
        on_ready(url)


def serve(services: DashboardServices, *, host: str = "127.0.0.1", port: int = 5006,
          poll_ms: int = 300, account: str | None = None, show: bool = False,
          threaded: bool = False, start: bool = True,
          on_ready: Callable[[str], None] | None = None) -> Any:
    """Serve the dashboard at ``http://host:port/`` (blocks unless ``threaded``).

    Parameters
    ----------
    on_ready
        Called with the server's URL from its IO loop as soon as it answers requests
        (not with ``threaded``; without ``start``, once the caller starts the loop).

    Returns the bokeh server (or, ``threaded``, the thread running it: call
    ``.stop()`` to end it).
    """
    origins = sorted({f"{host}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"})
    log.info("dashboard_serving", host=host, port=port)
    if threaded and on_ready is not None:
        raise ValueError("on_ready needs the server's own loop: not with threaded=True")
    # Every page calls pn.extension(); with this on, each call re-derives the signatures of
    # all Panel classes for interactive help (~0.3 s of CPU per page), of no use to a server.
    pn.config.apply_signatures = False
    warm = _Preload()
    server = pn.serve(session_factory(services, poll_ms=poll_ms, account=account, warm=warm),
                      address=host, port=port, show=show, start=start and threaded, threaded=threaded,
                      title="tradelab dashboard", websocket_origin=origins,
                      # a closed tab's (or reloaded page's) session ends 10-12 s later
                      check_unused_sessions_milliseconds=2000,
                      unused_session_lifetime_milliseconds=10000,
                      extra_patterns=extra_patterns(services),
                      exclude_cookies=[COOKIE], exclude_headers=["Cookie"],
                      admin=False, verbose=False)
    if threaded:
        return server
    # pn.serve(start=True) would block before we could hook in: the port is bound by
    # now, and the callback runs once the loop below serves requests.
    shown = f"[{host}]" if ":" in host else host  # an IPv6 literal
    server.io_loop.add_callback(_answering, on_ready, f"http://{shown}:{server.port}/")
    server.io_loop.add_callback(warm.start)  # once ready: see _Preload
    if start:
        server.start()
        server.io_loop.start()
    return server


__all__ = ["HealthHandler", "LogoutHandler", "TicketHandler", "extra_patterns", "serve",
           "session_factory"]
