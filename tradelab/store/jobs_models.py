"""Schema for scheduled notebook jobs and notification deliveries.

Registered on the same :class:`~tradelab.store.models.Base` metadata as the
trading tables, so one ``alembic upgrade head`` creates everything and the
"models == migrations" check covers these tables too.

``apscheduler_jobs`` mirrors the table APScheduler 3's ``SQLAlchemyJobStore``
defines for itself (same name, columns and index). Declaring it here lets the
migration create it; APScheduler then finds it and never issues DDL of its own,
and ``alembic check`` does not report it as an unknown table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Unicode,
)
from sqlalchemy.orm import Mapped, mapped_column

from tradelab.store.models import SEVERITIES, Base, _one_of

JOB_TRIGGERS = ("manual", "schedule", "replay")
JOB_STATUSES = ("running", "succeeded", "failed", "timed_out", "cancelled", "skipped")
FINAL_JOB_STATUSES = tuple(s for s in JOB_STATUSES if s != "running")
DELIVERY_STATUSES = ("pending", "sent", "failed", "dropped")
SCHEDULER_TABLE = "apscheduler_jobs"


class JobRun(Base):
    """One execution of a notebook job (all its retry attempts)."""

    __tablename__ = "job_runs"
    __table_args__ = (
        _one_of("trigger", JOB_TRIGGERS),
        _one_of("status", JOB_STATUSES),
        Index("ix_job_runs_job_started", "job", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(100))
    notebook: Mapped[str] = mapped_column(String(1000))
    parameters: Mapped[dict[str, Any]]
    trigger: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    # "git:<sha>" (clean tree) or "sha256:<hash of notebook + strategy source>".
    code_version: Mapped[str] = mapped_column(String(100))
    git_commit: Mapped[str | None] = mapped_column(String(64))
    notebook_sha256: Mapped[str] = mapped_column(String(64))
    strategy_sha256: Mapped[str | None] = mapped_column(String(64))
    data_fingerprint: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(String(4000))
    output_path: Mapped[str | None] = mapped_column(String(1000))
    replay_of: Mapped[int | None] = mapped_column(ForeignKey("job_runs.id"))
    summary: Mapped[dict[str, Any] | None]


class NotificationDelivery(Base):
    """One notification sent (or not) to one channel; ``target`` is the masked URL."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        _one_of("severity", SEVERITIES),
        _one_of("status", DELIVERY_STATUSES),
        Index("ix_notification_deliveries_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_type: Mapped[str] = mapped_column(String(50))
    severity: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(500))
    title: Mapped[str] = mapped_column(String(500))
    reference: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class SchedulerJob(Base):
    """APScheduler's job store table (layout owned by APScheduler 3.x; do not change)."""

    __tablename__ = SCHEDULER_TABLE

    id: Mapped[str] = mapped_column(Unicode(191), primary_key=True)
    next_run_time: Mapped[float | None] = mapped_column(Float(25), index=True)
    job_state: Mapped[bytes] = mapped_column(LargeBinary)
