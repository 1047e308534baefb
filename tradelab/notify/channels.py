"""Apprise channels: one named destination URL with its routing rule.

The URL is a secret (it embeds tokens and passwords). It is registered with
the redactor when the channel is built, and only :attr:`Channel.target` (the
masked form) is ever logged, stored or printed.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tradelab.errors import TradelabError
from tradelab.monitor.redact import mask_url, protect_logger, redact_text, register_url
from tradelab.notify.settings import ChannelSettings, severity_rank


class DeliveryError(TradelabError):
    """A channel did not accept a notification (the message is already redacted)."""


def _with_timeouts(url: str, timeout: float) -> str:
    # apprise reads connect/read timeouts (seconds) from the URL; a dead host
    # must fail an attempt in bounded time, so set them unless the URL does.
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    changed = False
    for key in ("cto", "rto"):
        if key not in query:
            query[key] = f"{timeout:g}"
            changed = True
    return urlunsplit(parts._replace(query=urlencode(query, safe="@:/"))) if changed else url


DEFAULT_TIMEOUT = 10.0
_APPRISE_TYPE = {"info": "info", "warning": "warning", "error": "failure", "critical": "failure"}


class Channel:
    """A notification destination.

    Parameters
    ----------
    name
        The channel's name in configuration (safe to show).
    url
        The apprise URL (secret).
    min_severity
        Lowest severity this channel receives.
    events
        Event types it receives; empty means all.
    timeout
        Seconds per delivery attempt, applied as apprise ``cto``/``rto``.
    """

    def __init__(self, name: str, url: str, min_severity: str = "info",
                 events: tuple[str, ...] = (), timeout: float = DEFAULT_TIMEOUT) -> None:
        if not timeout > 0:
            raise ValueError(f"channel {name}: timeout must be > 0 seconds, got {timeout!r}")
        severity_rank(min_severity)  # validate early
        register_url(url)
        protect_logger("apprise")
        self.name = name
        self.min_severity = min_severity
        self.events = tuple(events)
        self.timeout = float(timeout)
        # apprise masks what it knows is secret (passwords, known token fields); the
        # generic pass also covers tokens it treats as plain path segments.
        self.target = redact_text(mask_url(url))
        self._url = _with_timeouts(url, timeout)
        register_url(self._url)
        self._apprise: Any = None

    def __repr__(self) -> str:
        return f"Channel({self.name!r}, {self.target!r}, min_severity={self.min_severity!r})"

    @classmethod
    def from_settings(cls, name: str, cfg: ChannelSettings, timeout: float = DEFAULT_TIMEOUT) -> Channel:
        """Build from a ``[notify.channels.<name>]`` section.

        ``timeout`` (``[notify] delivery_timeout``) applies unless the section sets its own.
        """
        return cls(name, cfg.url.get_secret_value(), cfg.min_severity, cfg.events,
                   cfg.timeout if cfg.timeout is not None else timeout)

    def accepts(self, event_type: str, severity: str) -> bool:
        """Whether this channel routes ``event_type`` at ``severity``."""
        if self.events and event_type not in self.events:
            return False
        return severity_rank(severity) >= severity_rank(self.min_severity)

    def _client(self) -> Any:
        if self._apprise is None:
            import apprise

            client = apprise.Apprise()
            if not client.add(self._url):
                raise DeliveryError(f"channel {self.name}: not a valid apprise URL ({self.target})")
            self._apprise = client
        return self._apprise

    def send(self, title: str, body: str, severity: str = "info") -> None:
        """Deliver once (no retry here).

        Raises
        ------
        DeliveryError
            If apprise reports failure or raises; the message is redacted.
        """
        started = time.monotonic()
        try:
            ok = self._client().notify(title=title, body=body,
                                       notify_type=_APPRISE_TYPE.get(severity, "info"))
        except DeliveryError:
            raise
        except Exception as exc:  # plugins raise all sorts; none may escape the worker
            raise DeliveryError(redact_text(f"channel {self.name}: {type(exc).__name__}: {exc}")) from None
        if not ok:
            # apprise reports a timeout as a plain False; the elapsed time tells the
            # operator it was a channel that did not answer rather than one that refused.
            if time.monotonic() - started >= self.timeout:
                raise DeliveryError(f"channel {self.name}: {self.target} did not answer within "
                                    f"{self.timeout:g}s")
            raise DeliveryError(f"channel {self.name}: delivery to {self.target} failed")


def build_channels(channels: dict[str, ChannelSettings], timeout: float = DEFAULT_TIMEOUT) -> list[Channel]:
    """Channels for every enabled ``[notify.channels.*]`` entry, in name order.

    Parameters
    ----------
    channels
        The ``[notify.channels]`` table.
    timeout
        Seconds per attempt for channels that do not set their own
        (``[notify] delivery_timeout``).
    """
    return [Channel.from_settings(name, cfg, timeout)
            for name, cfg in sorted(channels.items()) if cfg.enabled]
