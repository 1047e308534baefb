"""The live Panel dashboard: positions, P&L, orders, fills, risk, jobs and operator controls.

Framework pieces are imported lazily, so ``import tradelab.dashboard`` stays cheap:

* :class:`DashboardServices` / :func:`open_services` (``services``): the store,
  :class:`~tradelab.auth.AuthService` and :class:`~tradelab.api.control.ControlService`;
* :class:`DashboardState` (``state``): a cheap version poll and the data snapshot;
* :class:`DashboardApp` (``app``): one browser session (login → live views → logout);
* :func:`serve` (``server``): the Panel server behind ``tradelab dashboard``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DashboardServices": "services", "open_services": "services",
    "DashboardState": "state", "Snapshot": "state", "load_snapshot": "state",
    "store_version": "state",
    "UserSession": "login",
    "DashboardApp": "app",
    "serve": "server",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tradelab.dashboard' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"tradelab.dashboard.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
