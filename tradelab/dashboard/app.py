"""One dashboard session: :class:`DashboardApp` (login → live views and controls → logout).

Served, each browser session gets its own instance (see :mod:`.server`); in
JupyterLab, build one and display it inline. While someone is logged in a
periodic callback (``poll_ms``, 300 ms by default) runs one cheap version
query and re-reads the data only when the store changed, so a fill committed
by an engine in another process shows within about ``poll_ms`` plus the read.

The live part (data, views, controls) is built at the first login, not with the
app: most pages a server builds show the login form only (a fresh visit, the
page before the login cookie is set), and the views pull in pandas, Bokeh's
plotting and the store's reads, which the server process imports after it answers
(:func:`preload`) rather than before.
"""

from __future__ import annotations

import html
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import panel as pn
import param
import structlog

from tradelab.auth.errors import InvalidCredentials
from tradelab.auth.roles import Principal
from tradelab.dashboard.login import LoginView, UserSession
from tradelab.dashboard.services import DashboardServices

if TYPE_CHECKING:
    from tradelab.dashboard.closeview import PositionCloser
    from tradelab.dashboard.controls import Controls
    from tradelab.dashboard.state import DashboardState
    from tradelab.dashboard.views import LazySection, LiveViews

log = structlog.get_logger("tradelab.dashboard")
HEADER = {"background": "#111827", "color": "white", "padding": "6px 16px",
          "border-radius": "8px"}
PAGE = {"background": "#f5f6f8", "padding": "8px"}
AUTO_RUN = "live run (auto)"
RECHECK_EVERY = 20  # polls between re-checks of the login itself (revoked elsewhere, disabled)


def preload() -> None:
    """Import what the live views need (pandas, Bokeh's plotting), without building any.

    The server calls it in a thread once it answers, so that neither its readiness
    nor, usually, the first page after a login waits for them. It must not import
    HoloViews (see :class:`tradelab.dashboard.server._Preload`).
    """
    for module in ("tradelab.dashboard.views", "tradelab.dashboard.controls",
                   "tradelab.dashboard.closeview"):
        importlib.import_module(module)


@dataclass
class _Live:
    """The part of a session that exists only once somebody logged in."""

    state: DashboardState
    views: LiveViews
    controls: Controls
    closer: PositionCloser
    layout: pn.Column
    sections: dict[str, LazySection]


class DashboardApp(pn.viewable.Viewer):
    """The live dashboard for one user session.

    Parameters
    ----------
    services
        :class:`~tradelab.dashboard.services.DashboardServices` (shared by sessions).
    account
        The account shown first (default: ``services.default_account``).
    session
        A :class:`~tradelab.dashboard.login.UserSession` (default: a new one).
    live
        Start polling the store after login (off for a static notebook render).
    on_login, on_logout
        Called with the session after a login through the form or :meth:`login`, and after
        a logout (with ``True`` when the user logged out, ``False`` when the login was
        found revoked or expired); the server uses them to remember the login for the
        browser and to forget it.
    reload_after_login
        The server sends the browser to a new page after a login through the form (to
        set the login cookie): this page then only says so instead of building the live
        views, which the next page builds anyway.
    """

    title = param.String(default="tradelab · live dashboard")
    poll_ms = param.Integer(default=300, bounds=(50, 5000), doc="store poll period")
    live = param.Boolean(default=True, doc="poll the store while logged in")

    def __init__(self, services: DashboardServices, *, account: str | None = None,
                 session: UserSession | None = None,
                 on_login: Callable[[UserSession], None] | None = None,
                 on_logout: Callable[[UserSession, bool], None] | None = None,
                 reload_after_login: bool = False, **params: Any) -> None:
        super().__init__(**params)
        self.services = services
        self.on_login, self.on_logout = on_login, on_logout
        self.reload_after_login = reload_after_login
        self.session = session or UserSession(services.auth)
        self._account = account or services.default_account
        self.login_view = LoginView(self.session, self._form_login, title=self.title)
        self.account_select = pn.widgets.Select(options=[self._account], value=self._account,
                                                width=180, margin=(8, 10))
        # 0 stands for "follow the live run" (Select values must not be None).
        self.run_select = pn.widgets.Select(options={AUTO_RUN: 0}, value=0, width=300,
                                            margin=(8, 10))
        self.user_badge = pn.pane.HTML("", margin=(14, 10))
        self.logout_button = pn.widgets.Button(label="Log out", color="light", width=90,
                                               margin=(8, 10))
        self.logout_button.on_click(lambda _e: self.logout())
        self.account_select.param.watch(self._pick_account, "value")
        self.run_select.param.watch(self._pick_run, "value")
        self._callback: Any = None
        self._polls = 0
        self._live_part: _Live | None = None
        self.root = pn.Column(sizing_mode="stretch_width", styles=PAGE, min_height=600)
        self._show()

    # -- the live part, built on first use ----------------------------------------------
    def _live(self) -> _Live:
        if self._live_part is None:
            from tradelab.dashboard.closeview import PositionCloser
            from tradelab.dashboard.controls import Controls
            from tradelab.dashboard.state import DashboardState
            from tradelab.dashboard.views import LiveViews

            state = DashboardState(self.services.store, self.services.control,
                                   account=self._account)
            views = LiveViews()
            controls = Controls(self.session, self.services.control, state)
            closer = PositionCloser(self.session, self.services.control, state)
            layout, sections = self._layout(views, controls, closer)
            self._live_part = _Live(state, views, controls, closer, layout, sections)
            state.param.watch(lambda _e: self.render(), "snapshot")
            self.render()
        return self._live_part

    @property
    def state(self) -> DashboardState:
        """The data shown (:class:`~tradelab.dashboard.state.DashboardState`)."""
        return self._live().state

    @property
    def views(self) -> LiveViews:
        return self._live().views

    @property
    def controls(self) -> Controls:
        return self._live().controls

    @property
    def closer(self) -> PositionCloser:
        """The selected run's "Close position" (:class:`.closeview.PositionCloser`)."""
        return self._live().closer

    @property
    def sections(self) -> dict[str, LazySection]:
        """The sections built when first opened (:class:`.views.LazySection`), by title."""
        return self._live().sections

    @property
    def _dashboard(self) -> pn.Column:
        return self._live().layout

    # -- layout -------------------------------------------------------------------------
    def _layout(self, v: LiveViews, controls: Controls, closer: PositionCloser
                ) -> tuple[pn.Column, dict[str, LazySection]]:
        from tradelab.dashboard.views import LazySection, section

        header = pn.Row(
            pn.pane.HTML(f"<div style='font-size:20px;font-weight:700;color:white;"
                         f"padding-top:4px'>{html.escape(self.title)}</div>", margin=(4, 10)),
            pn.layout.HSpacer(), pn.pane.HTML("<span style='color:#9ca3af'>Account</span>",
                                              margin=(14, 0)),
            self.account_select, pn.pane.HTML("<span style='color:#9ca3af'>Run</span>",
                                              margin=(14, 0)),
            self.run_select, self.user_badge, self.logout_button,
            styles=HEADER, sizing_mode="stretch_width")
        # The first screen is built with the page; the rest are closed cards built when
        # first opened (see LiveViews): a page costs the server and the browser only what
        # it shows (the open orders are counted on a tile), and the first one after a
        # login costs the server about half the CPU time it did with every section.
        lazy = [LazySection(title, v, parts, content) for title, parts, content in (
            ("Open orders (selected run)", ("orders",), lambda: [v.orders]),
            ("Closed trades (selected run)", ("trades",), lambda: [v.trades]),
            ("Daily P&L (selected run)", ("daily",), lambda: [v.daily_plot]),
            ("Risk events and alerts (account)", ("risk_events",), lambda: [v.risk_events]),
            ("Engine runs (account)", ("runs",), lambda: [v.runs]),
            ("Job runs", ("job_runs",), lambda: [v.job_runs]),
            ("Recent events: orders and data quality (selected run)", ("events",),
             lambda: [v.events]),
            ("Venue reconciliations", ("reconciliations",), lambda: [v.reconciliations]),
            ("Performance per symbol (selected run)", ("symbols",), lambda: [v.symbols]),
            ("Price, indicators and fills (selected run)", ("price",), lambda: [v.price_plot]),
            ("Feed health and data quality (selected run)", ("feed", "quality"),
             lambda: [v.feed, v.quality]),
        )]
        layout = pn.Column(
            header, v.kill_switch, pn.Column(v.kpis, v.account, v.status, styles=CARD_LIGHT,
                                             sizing_mode="stretch_width"),
            pn.Row(section("Equity curve", v.equity_plot),
                   section("Controls", controls.panel, width=560),
                   sizing_mode="stretch_width"),
            pn.Row(section("Open positions (selected run)", v.positions, closer.panel),
                   section("Recent fills (selected run)", v.fills), sizing_mode="stretch_width"),
            # One per row: a card opened next to a closed one in a row had no width to draw in.
            *lazy, sizing_mode="stretch_width")
        return layout, {s.title: s for s in lazy}

    def _show(self) -> None:
        if self.session.principal is None:
            self.root.objects = [pn.Row(pn.layout.HSpacer(), self.login_view.panel,
                                        pn.layout.HSpacer(), sizing_mode="stretch_width")]
        else:
            self.root.objects = [self._dashboard]

    def render(self) -> None:
        """Push the current snapshot and role into the widgets (built yet or not)."""
        live = self._live_part
        snap = live.state.snapshot if live is not None else None
        if live is None or snap is None:
            return
        principal = self.session.principal
        options = sorted({*snap.accounts, live.state.account})
        if list(self.account_select.options) != options:
            self.account_select.options = options
        runs = {AUTO_RUN: 0, **dict(snap.run_options)}
        if self.run_select.options != runs:
            self.run_select.options = runs
        # One document patch: the browser never shows one run's tiles with another's charts.
        with pn.io.hold():
            live.views.update(snap)
            live.controls.update(snap, principal)
            live.closer.update(snap, principal)
        if principal is not None:
            self.user_badge.object = (
                f"<span style='color:#e5e7eb' data-testid='user'>"
                f"{html.escape(principal.username)}</span> <span style='background:#374151;"
                f"color:#f9fafb;border-radius:4px;padding:2px 6px;font-size:12px' "
                f"data-testid='role'>{principal.role.name}</span>")

    def _pick_run(self, event: Any) -> None:
        run = event.new or None
        if self._live_part is not None and run != self.state.run:
            self.state.run = run

    def _pick_account(self, event: Any) -> None:
        if event.new and event.new != self.state.account:
            self.state.account = event.new

    # -- session ---------------------------------------------------------------------
    def login(self, username: str, password: str, totp_code: str | None = None) -> Principal:
        """Log in programmatically (a notebook); raises the auth errors."""
        principal = self.session.login(username, password, totp_code)
        self._form_login(principal)
        return principal

    def resume(self) -> Principal | None:
        """Open on the dashboard if ``session`` is still logged in (re-checked against the
        store, an expired access token rotated); otherwise stay on the login form."""
        try:
            principal = self.session.current()
        except InvalidCredentials:
            self._show()
            return None
        self._logged_in(principal)
        return principal

    def _form_login(self, principal: Principal) -> None:
        if self.reload_after_login:
            # Building the views here would cost the server a second or more (several under
            # load) before the browser even learns where to go next.
            self.root.objects = [pn.pane.HTML("<p data-testid='signing-in'>Signing in…</p>",
                                              margin=(60, 0, 0, 0), align="center")]
            if self.on_login is not None:
                self.on_login(self.session)
            return
        if self.on_login is not None:  # first: the cookie's fetch goes out with the views
            self.on_login(self.session)
        self._logged_in(principal)

    def _logged_in(self, _principal: Principal) -> None:
        if self._live_part is None:
            self._live()  # reads the store and renders as it builds
        elif not self._live_part.state.poll():  # re-read only if the store changed (it was
            self.render()                       # read at build); the user may be another one
        self._show()
        if self.live:
            self.start_polling()

    def logout(self, *, by_user: bool = True) -> None:
        """End the session (revoked in the store) and go back to the login form."""
        self.stop_polling()
        self.session.logout()
        if self._live_part is not None:
            self._live_part.controls.message.visible = False
            self._live_part.closer.message.visible = False
            self._live_part.closer.withdraw()
        self._show()
        if self.on_logout is not None:
            self.on_logout(self.session, by_user)

    # -- polling ----------------------------------------------------------------------
    def poll(self) -> bool:
        """One tick: refresh if the store changed; every few ticks re-check the login."""
        self._polls += 1
        if self._polls % RECHECK_EVERY == 0:
            try:
                self.session.current()
            except InvalidCredentials:
                self.logout(by_user=False)
                return False
        if self._live_part is None:  # nobody logged in yet: nothing shown to refresh
            return False
        try:
            return self._live_part.state.poll()
        except Exception as exc:  # a transient database error must not kill the callback
            log.warning("dashboard_poll_failed", error=type(exc).__name__)
            return False

    def start_polling(self) -> None:
        """Poll the store every ``poll_ms`` ms (needs a running server or notebook kernel)."""
        if self._callback is None:
            self._callback = pn.state.add_periodic_callback(self._tick, period=self.poll_ms)

    def _tick(self) -> None:  # Panel's periodic callbacks return nothing
        self.poll()

    def stop_polling(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    def __panel__(self) -> Any:
        return self.root


CARD_LIGHT = {"background": "white", "border": "1px solid #e3e6ea", "border-radius": "8px",
              "padding": "0 12px"}

__all__ = ["DashboardApp", "preload"]
