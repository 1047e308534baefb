"""Logins that survive a page reload: a server-side registry behind a signed cookie.

A successful login over the websocket puts its :class:`~tradelab.dashboard.login.UserSession`
(which holds the token pair) in :class:`BrowserSessions` under a random 256-bit id. The
tokens never leave the server: the browser only gets that id, in an HttpOnly,
SameSite=Strict cookie signed with a per-server secret (:class:`CookieSigner`). Because the
login happens over the websocket, the page fetches the cookie with a one-time *ticket*
(random, single use, valid for at most 30 s, bound to the registry entry and the client's
address): ``/session?ticket=...`` sets the cookie and redirects to ``/``. A new page (a
reload, a second tab) reads the cookie, finds the entry and re-checks it against the store.

An entry no page has used for ``idle_timeout`` seconds is forgotten (never longer than the
refresh token's lifetime); a server restart forgets them all.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tornado.web import create_signed_value, decode_signed_value

COOKIE = "tradelab_session"
MAX_TICKET_TTL = 30.0  # seconds


@dataclass
class _Entry:
    session: Any          # a logged-in UserSession (shared by the pages of one browser)
    last_seen: float
    pages: int = 0        # open pages using it: not idle while one is open


@dataclass
class _Ticket:
    sid: str
    expires: float
    ip: str | None


class BrowserSessions:
    """Logged-in browser sessions by id, with idle expiry and one-time cookie tickets.

    Parameters
    ----------
    idle_timeout
        Seconds an entry lives without an open page (callers cap it at the refresh
        token's lifetime).
    ticket_ttl
        Seconds a ticket stays valid (at most 30).
    clock
        Monotonic seconds (tests pass a fake one).
    """

    def __init__(self, idle_timeout: float, *, ticket_ttl: float = MAX_TICKET_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")
        if not 0 < ticket_ttl <= MAX_TICKET_TTL:
            raise ValueError(f"ticket_ttl must be in (0, {MAX_TICKET_TTL:g}] seconds")
        self.idle_timeout, self.ticket_ttl, self.clock = float(idle_timeout), ticket_ttl, clock
        self._entries: dict[str, _Entry] = {}
        self._tickets: dict[str, _Ticket] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._expire(self.clock())
            return len(self._entries)

    def add(self, session: Any) -> str:
        """Register a logged-in session; its new random id (256 bits, URL-safe)."""
        sid = secrets.token_urlsafe(32)
        with self._lock:
            now = self.clock()
            self._expire(now)
            self._entries[sid] = _Entry(session, now)
        return sid

    def get(self, sid: str | None) -> Any:
        """The session registered under ``sid`` (``None`` if unknown or idle too long)."""
        return self._touch(sid, 0)

    def attach(self, sid: str) -> Any:
        """Like :meth:`get`, and count an open page (the entry is not idle until detached)."""
        return self._touch(sid, 1)

    def _touch(self, sid: str | None, pages: int) -> Any:
        if not sid:
            return None
        with self._lock:
            now = self.clock()
            self._expire(now)
            entry = self._entries.get(sid)
            if entry is None:
                return None
            entry.pages += pages
            entry.last_seen = now
            return entry.session

    def detach(self, sid: str) -> None:
        """A page using ``sid`` closed: the idle clock restarts now."""
        with self._lock:
            entry = self._entries.get(sid)
            if entry is not None:
                entry.pages = max(0, entry.pages - 1)
                entry.last_seen = self.clock()

    def drop(self, sid: str | None) -> Any:
        """Forget ``sid`` and its tickets; the session it held (``None`` if none)."""
        if not sid:
            return None
        with self._lock:
            entry = self._entries.pop(sid, None)
            for key in [k for k, t in self._tickets.items() if t.sid == sid]:
                del self._tickets[key]
        return None if entry is None else entry.session

    def issue_ticket(self, sid: str, *, ip: str | None = None) -> str:
        """A one-time ticket for ``sid`` (valid ``ticket_ttl`` seconds, from ``ip`` if given).

        Raises
        ------
        KeyError
            ``sid`` is not registered.
        """
        ticket = secrets.token_urlsafe(32)
        with self._lock:
            now = self.clock()
            self._expire(now)
            if sid not in self._entries:
                raise KeyError("unknown browser session")
            self._tickets[ticket] = _Ticket(sid, now + self.ticket_ttl, ip)
        return ticket

    def redeem(self, ticket: str | None, *, ip: str | None = None) -> str | None:
        """The session id a ticket was issued for, once; ``None`` if unknown, used,
        expired, from another address or for a session that is gone."""
        if not ticket:
            return None
        with self._lock:
            now = self.clock()
            found = self._tickets.pop(ticket, None)  # single use, valid or not
            self._expire(now)
            if found is None or now >= found.expires or found.sid not in self._entries:
                return None
            if found.ip is not None and ip != found.ip:
                return None
            self._entries[found.sid].last_seen = now
            return found.sid

    def expire(self) -> int:
        """Forget idle entries and stale tickets now; how many entries went."""
        with self._lock:
            return self._expire(self.clock())

    def _expire(self, now: float) -> int:
        idle = [sid for sid, e in self._entries.items()
                if e.pages == 0 and now - e.last_seen >= self.idle_timeout]
        for sid in idle:
            del self._entries[sid]
        for key in [k for k, t in self._tickets.items()
                    if now >= t.expires or t.sid not in self._entries]:
            del self._tickets[key]
        return len(idle)


class CookieSigner:
    """Signs the browser-session id into the cookie value (tornado's HMAC-SHA256 format).

    Parameters
    ----------
    secret
        The key (``[dashboard] cookie_secret``); default: random, so cookies die with
        the server process.
    max_age
        Seconds a signed value is accepted after it was issued.
    clock
        Wall-clock seconds (default: :func:`time.time`).
    """

    def __init__(self, secret: str | bytes | None = None, *, max_age: float = 30 * 86400.0,
                 name: str = COOKIE, clock: Callable[[], float] | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)
        self.max_age, self.name, self.clock = max_age, name, clock

    def sign(self, sid: str) -> str:
        return create_signed_value(self._secret, self.name, sid, clock=self.clock).decode()

    def verify(self, value: str | bytes | None) -> str | None:
        """The session id in a cookie value, or ``None`` if forged, tampered or too old."""
        if not value:
            return None
        try:
            raw = decode_signed_value(self._secret, self.name, value,
                                      max_age_days=self.max_age / 86400.0, clock=self.clock)
        except Exception:  # malformed beyond what tornado checks itself
            return None
        if raw is None:
            return None
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            return None


__all__ = ["COOKIE", "MAX_TICKET_TTL", "BrowserSessions", "CookieSigner"]
