"""Notifications: apprise channels, Jinja2 templates, severity routing, background delivery.

>>> notifier = tradelab.app.build_notifier(settings, store)   # doctest: +SKIP
>>> attach(engine.bus, notifier)                          # fills, risk alerts, kill switch
>>> notifier.notify("job_failed", {"job": "nightly", "error": "..."})
"""

from __future__ import annotations

from typing import Any

from tradelab._lazy import lazy_exports

_EXPORTS = {
    "Channel": "tradelab.notify.channels", "DeliveryError": "tradelab.notify.channels",
    "build_channels": "tradelab.notify.channels", "attach": "tradelab.notify.events",
    "Dropped": "tradelab.notify.deliveries", "MemoryDeliveryLog": "tradelab.notify.deliveries",
    "Notification": "tradelab.notify.deliveries",
    "Notifier": "tradelab.notify.notifier", "Outcome": "tradelab.notify.deliveries",
    "StoreDeliveryLog": "tradelab.notify.deliveries", "EVENT_SEVERITY": "tradelab.notify.settings",
    "ChannelSettings": "tradelab.notify.settings", "NotifySettings": "tradelab.notify.settings",
    "Templates": "tradelab.notify.templates",
}


def notify_settings(settings: Any) -> Any:
    """The ``[notify]`` section of ``settings`` (defaults if the section is not wired yet)."""
    from tradelab.notify.settings import NotifySettings

    found = getattr(settings, "notify", None)
    return found if isinstance(found, NotifySettings) else NotifySettings()


__all__ = [*sorted(_EXPORTS), "notify_settings"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
