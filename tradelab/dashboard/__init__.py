"""The live Panel dashboard: positions, P&L, orders, fills, risk, jobs and operator controls.

Framework pieces are imported lazily, so ``import tradelab.dashboard`` stays cheap:

* :class:`DashboardServices` / :func:`open_services` (``services``): the store,
  :class:`~tradelab.auth.AuthService` and :class:`~tradelab.api.control.ControlService`;
* :class:`DashboardState` (``state``): a cheap version poll and the data snapshot;
* :class:`DashboardApp` (``app``): one browser session (login → live views → logout);
* :func:`serve` (``server``): the Panel server behind ``tradelab dashboard``.
"""

from __future__ import annotations

from tradelab._lazy import lazy_exports

_EXPORTS = {
    "DashboardServices": "services", "open_services": "services",
    "DashboardState": "state", "Snapshot": "state", "load_snapshot": "state",
    "store_version": "state",
    "UserSession": "login",
    "DashboardApp": "app",
    "serve": "server",
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
