"""Notifications: apprise channels, Jinja2 templates, severity routing, background delivery.

>>> notifier = build_notifier(settings, store)          # doctest: +SKIP
>>> attach(engine.bus, notifier)                          # fills, risk alerts, kill switch
>>> notifier.notify("job_failed", {"job": "nightly", "error": "..."})
"""

from __future__ import annotations

from typing import Any

from tradelab._lazy import lazy_exports

_EXPORTS = {
    "Channel": "tradelab.notify.channels", "DeliveryError": "tradelab.notify.channels",
    "build_channels": "tradelab.notify.channels", "attach": "tradelab.notify.events",
    "Dropped": "tradelab.notify.notifier", "MemoryDeliveryLog": "tradelab.notify.notifier",
    "Notification": "tradelab.notify.notifier",
    "Notifier": "tradelab.notify.notifier", "Outcome": "tradelab.notify.notifier",
    "StoreDeliveryLog": "tradelab.notify.notifier", "EVENT_SEVERITY": "tradelab.notify.settings",
    "ChannelSettings": "tradelab.notify.settings", "NotifySettings": "tradelab.notify.settings",
    "Templates": "tradelab.notify.templates",
}


def notify_settings(settings: Any) -> Any:
    """The ``[notify]`` section of ``settings`` (defaults if the section is not wired yet)."""
    from tradelab.notify.settings import NotifySettings

    found = getattr(settings, "notify", None)
    return found if isinstance(found, NotifySettings) else NotifySettings()


def build_notifier(settings: Any, store: Any = None) -> Any:
    """A :class:`Notifier` for the configured channels (none when ``[notify] enabled = false``).

    Parameters
    ----------
    settings
        :class:`tradelab.config.Settings`; ``[notify]`` is read from it.
    store
        When given (and ``record`` is on), deliveries are stored in it.
    """
    from tradelab.notify.channels import build_channels
    from tradelab.notify.notifier import Notifier, StoreDeliveryLog
    from tradelab.notify.templates import Templates

    cfg = notify_settings(settings)
    channels = build_channels(cfg.channels, cfg.delivery_timeout) if cfg.enabled else []
    folder = settings.path(cfg.templates_dir) if hasattr(settings, "path") else cfg.templates_dir
    log = StoreDeliveryLog(store) if store is not None and cfg.record else None
    return Notifier(channels, Templates(folder if folder.is_dir() else None), delivery_log=log,
                    queue_size=cfg.queue_size, retries=cfg.retries, backoff=cfg.backoff,
                    max_backoff=cfg.max_backoff, shutdown_grace=cfg.shutdown_grace)


__all__ = [*sorted(_EXPORTS), "build_notifier", "notify_settings"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
