"""What the dashboard talks to: the store, the auth service and the control service.

The dashboard calls :class:`~tradelab.auth.AuthService` and
:class:`~tradelab.api.control.ControlService` in-process (no HTTP round
trip): the same role checks and the same audit log as the REST API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tradelab.api.control import ControlService, JobsBackend
from tradelab.auth.service import AuthService, generate_secret
from tradelab.auth.settings import MIN_SECRET_BYTES, AuthSettings, auth_settings
from tradelab.dashboard.sessions import BrowserSessions, CookieSigner
from tradelab.errors import ConfigError

if TYPE_CHECKING:
    from tradelab.store import Store


@dataclass
class DashboardServices:
    """Shared by every browser session of one dashboard process."""

    store: Store
    auth: AuthService
    control: ControlService
    default_account: str = "paper"
    # Logged-in browsers (tokens stay here) and the key of their cookie: see .sessions.
    sessions: BrowserSessions = field(default=None)  # type: ignore[assignment]
    cookies: CookieSigner = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        ttl = self.auth.settings.refresh_ttl
        if self.sessions is None:
            self.sessions = BrowserSessions(idle_timeout=ttl)
        if self.cookies is None:
            self.cookies = CookieSigner(max_age=self.auth.settings.session_max_age)

    def close(self) -> None:
        """Stop the job pool (if any) and release the store's connections."""
        close = getattr(self.control.jobs_backend, "close", None)
        if close is not None:
            close()
        self.store.close()


def open_services(settings: Any = None, *, store: Store | None = None, registry: Any = None,
                  auth: AuthSettings | None = None, jobs: JobsBackend | None = None,
                  secret: str | None = None, dev: bool = False, clock: Any = None,
                  environ: Any = None) -> DashboardServices:
    """Wire the dashboard's services like :func:`tradelab.api.app.create_app` does.

    Parameters
    ----------
    settings
        :class:`tradelab.config.Settings` (``[auth]``, ``[store]``, ``[engine] account``,
        strategy paths).
    store
        A migrated store.
    registry
        The strategy registry.
    auth
        An explicit ``[auth]`` section.
    jobs
        A jobs backend (default: read-only job history from the store).
    secret
        The JWT secret (default: ``auth.jwt_secret``; with ``dev`` an ephemeral one).

    Raises
    ------
    tradelab.errors.ConfigError
        Without a JWT secret (outside ``dev``) or with one shorter than 32 bytes.
    """
    auth = auth or auth_settings(settings)
    if secret is None:
        secret = jwt_secret(auth, dev)
    if store is None or registry is None:
        # Chosen by the composition root (tradelab.app.build_dashboard_services), never here.
        raise TypeError("open_services needs store and registry "
                        "(see tradelab.app.build_dashboard_services)")
    service = AuthService(store, auth, secret=secret, clock=clock)
    account = getattr(getattr(settings, "engine", None), "account", None) or "paper"
    section = getattr(settings, "dashboard", None)
    idle = getattr(section, "session_idle", None) or auth.refresh_ttl
    return DashboardServices(store, service, ControlService(store, service, registry, jobs),
                             default_account=account,
                             sessions=BrowserSessions(min(idle, auth.refresh_ttl)),
                             cookies=CookieSigner(cookie_secret(section),
                                                  max_age=auth.session_max_age))


def jwt_secret(auth: AuthSettings, dev: bool = False) -> str:
    """``[auth] jwt_secret``, or with ``dev`` an ephemeral one.

    The rule of :func:`tradelab.api.app.resolve_secret`, repeated here because importing
    that module builds the whole REST API (FastAPI and every route: most of a second
    of the dashboard's start-up, three times that on a busy machine).

    Raises
    ------
    tradelab.errors.ConfigError
        No secret and not ``dev``, or a secret shorter than 32 bytes.
    """
    value = auth.jwt_secret.get_secret_value() if auth.jwt_secret is not None else ""
    if value:
        if len(value.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(["auth.jwt_secret = ********** (from TRADELAB__AUTH__JWT_SECRET): "
                               "must be at least 32 bytes"])
        return value
    if dev:
        return generate_secret()
    raise ConfigError(["auth.jwt_secret is not set: export TRADELAB__AUTH__JWT_SECRET "
                       "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`), "
                       "or pass --dev for an ephemeral one"])


def cookie_secret(section: Any) -> str | None:
    """``[dashboard] cookie_secret`` (``None``: a random one per server start).

    Raises
    ------
    tradelab.errors.ConfigError
        A secret shorter than 32 bytes.
    """
    value = getattr(section, "cookie_secret", None)
    secret = value.get_secret_value() if value is not None else ""
    if not secret:
        return None
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(["dashboard.cookie_secret = ********** (from "
                           "TRADELAB__DASHBOARD__COOKIE_SECRET): must be at least 32 bytes"])
    return secret


__all__ = ["DashboardServices", "cookie_secret", "jwt_secret", "open_services"]
