"""What the dashboard talks to: the store, the auth service and the control service.

The dashboard calls :class:`~tradelab.auth.AuthService` and
:class:`~tradelab.api.control.ControlService` in-process (no HTTP round
trip): the same role checks and the same audit log as the REST API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tradelab.api.control import ControlService, JobsBackend
from tradelab.auth.service import AuthService
from tradelab.auth.settings import AuthSettings, auth_settings


@dataclass
class DashboardServices:
    """Shared by every browser session of one dashboard process."""

    store: Any                 # tradelab.store.Store
    auth: AuthService
    control: ControlService
    default_account: str = "paper"

    def close(self) -> None:
        """Stop the job pool (if any) and release the store's connections."""
        close = getattr(self.control.jobs_backend, "close", None)
        if close is not None:
            close()
        self.store.close()


def open_services(settings: Any = None, *, store: Any = None, registry: Any = None,
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
        A migrated store (default: ``[store] url`` of ``settings``).
    registry
        The strategy registry (default: discovered from ``settings``).
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
    from tradelab.api.app import resolve_secret

    auth = auth or auth_settings(settings, environ)
    if secret is None:
        secret, _ = resolve_secret(auth, dev)
    if store is None:
        from tradelab.app import build_store
        from tradelab.config import load_config

        store = build_store(settings or load_config())
    if registry is None and settings is not None:
        from tradelab.app import build_registry

        registry = build_registry(settings)
    service = AuthService(store, auth, secret=secret, clock=clock)
    account = getattr(getattr(settings, "engine", None), "account", None) or "paper"
    return DashboardServices(store, service, ControlService(store, service, registry, jobs),
                             default_account=account)


__all__ = ["DashboardServices", "open_services"]
