"""The ``[monitor]`` configuration section: the HTTP endpoint and periodic health checks."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MonitorSettings(BaseModel):
    """``/health``, ``/ready`` and ``/metrics`` and the periodic checks behind alerts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    port: int = Field(default=0, ge=0, le=65535, description="HTTP port; 0 = no server")
    host: str = "127.0.0.1"
    check_interval: float = Field(default=30.0, gt=0, description="seconds between health checks")
    feed_max_age: float = Field(default=300.0, gt=0,
                                description="seconds without a bar before the feed is stale")
    alert: bool = True  # send health_alert notifications when a check changes state


def monitor_settings(settings: object) -> MonitorSettings:
    """The ``[monitor]`` section of ``settings`` (defaults if the section is not wired yet)."""
    found = getattr(settings, "monitor", None)
    return found if isinstance(found, MonitorSettings) else MonitorSettings()
