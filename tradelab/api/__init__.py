"""The REST API (FastAPI): ``create_app(settings, store=..., registry=...)``.

Framework-free pieces a dashboard can reuse directly: :mod:`tradelab.auth`
(login, sessions, roles) and :class:`tradelab.api.control.ControlService`
(strategy switches, kill switch, jobs; RBAC and audit included).
"""

from __future__ import annotations

from typing import Any


def create_app(*args: Any, **kwargs: Any) -> Any:
    """See :func:`tradelab.api.app.create_app` (imported lazily: FastAPI is heavy)."""
    from tradelab.api.app import create_app as _create

    return _create(*args, **kwargs)


__all__ = ["create_app"]
