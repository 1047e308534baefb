"""Job runs, notification deliveries and APScheduler's job store table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 07:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tradelab.store.types import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=100), nullable=False),
        sa.Column("notebook", sa.String(length=1000), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("code_version", sa.String(length=100), nullable=False),
        sa.Column("git_commit", sa.String(length=64), nullable=True),
        sa.Column("notebook_sha256", sa.String(length=64), nullable=False),
        sa.Column("strategy_sha256", sa.String(length=64), nullable=True),
        sa.Column("data_fingerprint", sa.String(length=100), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("error", sa.String(length=4000), nullable=True),
        sa.Column("output_path", sa.String(length=1000), nullable=True),
        sa.Column("replay_of", sa.Integer(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.CheckConstraint("trigger IN ('manual', 'schedule', 'replay')",
                           name=op.f("ck_job_runs_trigger_allowed")),
        sa.CheckConstraint("status IN ('running', 'succeeded', 'failed', 'timed_out', 'cancelled', "
                           "'skipped')", name=op.f("ck_job_runs_status_allowed")),
        sa.ForeignKeyConstraint(["replay_of"], ["job_runs.id"],
                                name=op.f("fk_job_runs_replay_of_job_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    op.create_index("ix_job_runs_job_started", "job_runs", ["job", "started_at"])
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=50), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("severity IN ('info', 'warning', 'error', 'critical')",
                           name=op.f("ck_notification_deliveries_severity_allowed")),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed', 'dropped')",
                           name=op.f("ck_notification_deliveries_status_allowed")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_deliveries")),
    )
    op.create_index("ix_notification_deliveries_created", "notification_deliveries", ["created_at"])
    # Layout identical to APScheduler 3's SQLAlchemyJobStore table.
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(length=191), nullable=False),
        sa.Column("next_run_time", sa.Float(precision=25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apscheduler_jobs")),
    )
    op.create_index(op.f("ix_apscheduler_jobs_next_run_time"), "apscheduler_jobs", ["next_run_time"])


def downgrade() -> None:
    op.drop_index(op.f("ix_apscheduler_jobs_next_run_time"), table_name="apscheduler_jobs")
    op.drop_table("apscheduler_jobs")
    op.drop_index("ix_notification_deliveries_created", table_name="notification_deliveries")
    op.drop_table("notification_deliveries")
    op.drop_index("ix_job_runs_job_started", table_name="job_runs")
    op.drop_table("job_runs")
