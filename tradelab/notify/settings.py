"""The ``[notify]`` configuration section: channels, routing, queue, retries and timeouts.

Channel URLs are apprise URLs and embed tokens or passwords, so they are
:class:`~pydantic.SecretStr`: ``tradelab config check`` and any dump of the
settings show them masked. Put real URLs in the environment, e.g.
``TRADELAB__NOTIFY__CHANNELS__OPS__URL='tgram://TOKEN/CHAT'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

Severity = Literal["info", "warning", "error", "critical"]
SEVERITY_ORDER: tuple[str, ...] = ("info", "warning", "error", "critical")

# Default severity of each event type (a RiskAlert may raise its own to critical).
EVENT_SEVERITY: dict[str, str] = {
    "order_filled": "info",
    "risk_alert": "warning",
    "kill_switch": "critical",
    "job_failed": "error",
    "job_succeeded": "info",
    "daily_summary": "info",
    "health_alert": "error",
}


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChannelSettings(_Section):
    """One apprise destination and what it receives."""

    url: SecretStr
    min_severity: Severity = "info"
    # Event types this channel receives; empty = all of them.
    events: tuple[str, ...] = ()
    enabled: bool = True
    # Seconds per attempt (connect and read); unset: [notify] delivery_timeout.
    timeout: float | None = Field(default=None, gt=0,
                                  description="seconds per attempt (connect and read), "
                                              "overrides [notify] delivery_timeout")


class NotifySettings(_Section):
    """Notifications: channels, templates and the delivery worker."""

    enabled: bool = True
    channels: dict[str, ChannelSettings] = Field(default_factory=dict)
    templates_dir: Path = Path("config/templates")
    queue_size: int = Field(default=1000, gt=0, description="pending notifications per channel")
    retries: int = Field(default=3, ge=0, description="extra attempts after a failed delivery")
    backoff: float = Field(default=1.0, ge=0, description="first retry wait, seconds (doubles)")
    max_backoff: float = Field(default=30.0, ge=0)
    delivery_timeout: float = Field(
        default=10.0, gt=0,
        description="seconds per delivery attempt: the network call's connect and read timeouts "
                    "(apprise cto/rto); a channel's own timeout overrides it")
    shutdown_grace: float = Field(
        default=5.0, ge=0,
        description="seconds close() waits for queued and in-flight deliveries before recording "
                    "the rest as dropped")
    record: bool = True  # store each delivery in notification_deliveries


def severity_rank(severity: str) -> int:
    """Position of ``severity`` in info < warning < error < critical."""
    try:
        return SEVERITY_ORDER.index(severity)
    except ValueError:
        raise ValueError(f"severity {severity!r}: expected one of {', '.join(SEVERITY_ORDER)}") from None
