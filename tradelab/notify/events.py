"""Engine events → notifications, attached through the event bus (no engine code changes).

Handlers run on the engine's thread, so they only copy a few fields into a
plain dict and hand it to :meth:`Notifier.notify`, which enqueues and returns.
"""

from __future__ import annotations

from typing import Any

from tradelab.events import KillSwitchEngaged, OrderFilled, RiskAlert


def order_filled_context(ev: OrderFilled) -> dict[str, Any]:
    """Template context of an ``OrderFilled`` event."""
    o, f = ev.order, ev.fill
    return {"client_order_id": ev.client_order_id, "strategy": getattr(o, "strategy", None),
            "account": getattr(o, "account", None), "run_id": getattr(o, "run_id", None),
            "symbol": getattr(f, "symbol", getattr(o, "symbol", None)),
            "side": getattr(f, "side", getattr(o, "side", None)),
            "quantity": getattr(f, "quantity", None), "price": getattr(f, "price", None),
            "fees": getattr(f, "fees", None), "at": ev.at}


def risk_alert_context(ev: RiskAlert) -> dict[str, Any]:
    """Template context of a ``RiskAlert`` event."""
    return {"account": ev.account, "rule": ev.rule, "message": ev.message,
            "strategy": ev.strategy, "client_order_id": ev.client_order_id, "at": ev.at,
            "halts_trading": ev.severity == "critical"}


def kill_switch_context(ev: KillSwitchEngaged) -> dict[str, Any]:
    """Template context of a ``KillSwitchEngaged`` event."""
    return {"account": ev.account, "reason": ev.reason, "by": ev.by, "at": ev.at}


def attach(bus: Any, notifier: Any, *, fills: bool = True) -> None:
    """Subscribe ``notifier`` to fills, risk alerts and kill-switch engagements on ``bus``.

    Parameters
    ----------
    bus
        The engine's :class:`~tradelab.bus.EventBus`.
    notifier
        A :class:`~tradelab.notify.notifier.Notifier` (anything with ``notify``).
    fills
        Also announce every fill (``order_filled``, severity info).
    """
    def on_fill(ev: OrderFilled) -> None:
        notifier.notify("order_filled", order_filled_context(ev), reference=ev.client_order_id)

    def on_risk(ev: RiskAlert) -> None:
        severity = "critical" if ev.severity == "critical" else "warning"
        notifier.notify("risk_alert", risk_alert_context(ev), severity=severity,
                        reference=ev.client_order_id)

    def on_kill(ev: KillSwitchEngaged) -> None:
        notifier.notify("kill_switch", kill_switch_context(ev), reference=ev.account)

    if fills:
        bus.subscribe(OrderFilled, on_fill)
    bus.subscribe(RiskAlert, on_risk)
    bus.subscribe(KillSwitchEngaged, on_kill)
