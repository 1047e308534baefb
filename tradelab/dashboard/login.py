"""Login for one browser session: :class:`UserSession` (logic) and :class:`LoginView` (form).

A login holds its own token pair, server-side only. Served, the pages of one
browser (a reload, a second tab) share it through :mod:`.sessions`; pages of
other browsers never do. Every control action re-authenticates the access token against the store, so
a logout elsewhere, a revoked session, a disabled user or a changed role take
effect at the next click; an expired access token is rotated with the
refresh token like an API client would.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import panel as pn
import param

from tradelab.auth.errors import AuthError, InvalidCredentials, LockedOut, TotpRequired
from tradelab.auth.roles import Principal
from tradelab.auth.service import AuthService, TokenPair


class UserSession(param.Parameterized):
    """Who is logged in to this browser session (``principal`` is ``None`` when nobody)."""

    principal = param.Parameter(default=None, doc="the logged-in Principal")

    def __init__(self, auth: AuthService, *, ip: str | None = None,
                 user_agent: str | None = None, **params: Any) -> None:
        super().__init__(**params)
        self.auth, self.ip, self.user_agent = auth, ip, user_agent
        self._tokens: TokenPair | None = None
        self._lock = threading.RLock()  # pages sharing this login must not rotate it twice

    def login(self, username: str, password: str, totp_code: str | None = None) -> Principal:
        """Open a session (raises the :class:`AuthService` errors; they are audited there)."""
        pair = self.auth.login(username, password, totp_code or None, ip=self.ip,
                               user_agent=self.user_agent or "tradelab-dashboard")
        self._tokens = pair
        self.principal = self.auth.authenticate(pair.access_token, ip=self.ip)
        return self.principal

    def current(self) -> Principal:
        """The caller as of now, re-read from the store (rotating an expired access token).

        Raises
        ------
        InvalidCredentials
            Not logged in, or the session was revoked or expired (then logged out here).
        """
        with self._lock:
            if self._tokens is None:
                raise InvalidCredentials("not logged in")
            try:
                principal = self.auth.authenticate(self._tokens.access_token, ip=self.ip)
            except InvalidCredentials:
                try:
                    self._tokens = self.auth.refresh(self._tokens.refresh_token, ip=self.ip)
                    principal = self.auth.authenticate(self._tokens.access_token, ip=self.ip)
                except InvalidCredentials:
                    self._forget()
                    raise
            if principal != self.principal:
                self.principal = principal  # e.g. an admin changed the role
            return principal

    def logout(self) -> None:
        """Revoke the session in the store (audited) and forget it here."""
        with self._lock:
            if self._tokens is not None and self.principal is not None:
                with contextlib.suppress(AuthError):  # revoked elsewhere: still logged out here
                    self.auth.logout(self.principal, ip=self.ip)
            self._forget()

    def _forget(self) -> None:
        self._tokens = None
        self.principal = None


def on_click(action: Callable[[], object]) -> Callable[[Any], None]:
    """A Panel click handler running ``action``; its result is for tests and notebooks."""
    def handle(_event: Any) -> None:
        action()

    return handle


def login_message(exc: AuthError) -> str:
    """What the form says for a failed login (one message for every bad credential)."""
    if isinstance(exc, TotpRequired):
        return "This account needs a TOTP code."
    if isinstance(exc, LockedOut):
        return str(exc).capitalize() + "."
    return "Invalid user name or password."


class LoginView:
    """The login form; calls ``on_login(principal)`` after a successful login."""

    def __init__(self, session: UserSession, on_login: Callable[[Principal], None],
                 title: str = "tradelab") -> None:
        self.session, self.on_login = session, on_login
        self.username = pn.widgets.TextInput(label="User", placeholder="user name", width=300)
        self.password = pn.widgets.PasswordInput(label="Password", placeholder="password", width=300)
        self.totp = pn.widgets.TextInput(label="TOTP code (if enabled)", placeholder="123456",
                                         width=300)
        self.button = pn.widgets.Button(label="Log in", color="primary", width=300)
        self.message = pn.pane.Alert("", alert_type="danger", visible=False, width=300)
        self.button.on_click(on_click(self.submit))
        if "enter_pressed" in self.password.param:  # newer Panel: Enter submits
            self.password.param.watch(lambda _e: self.submit(), "enter_pressed")
        self.panel = pn.Column(
            pn.pane.HTML(f"<h2 style='margin:0'>{title}</h2><p style='color:#666;margin:4px 0'>"
                         "Sign in with your tradelab account.</p>"),
            self.username, self.password, self.totp, self.button, self.message,
            styles={"border": "1px solid #ddd", "border-radius": "8px", "padding": "20px",
                    "background": "white"},
            margin=(60, 0, 0, 0), width=360)

    def submit(self) -> Principal | None:
        """Try the entered credentials; on failure show why (the password is cleared)."""
        try:
            principal = self.session.login((self.username.value or "").strip(),
                                           self.password.value or "",
                                           (self.totp.value or "").strip() or None)
        except AuthError as exc:
            self.password.value = ""
            self.message.object = login_message(exc)
            self.message.visible = True
            return None
        self.password.value = ""
        self.totp.value = ""
        self.message.visible = False
        self.on_login(principal)
        return principal

    def __panel__(self) -> Any:
        return self.panel


__all__ = ["LoginView", "UserSession", "login_message", "on_click"]
