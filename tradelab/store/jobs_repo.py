"""Reads and writes of job runs and notification deliveries.

Like the rest of the store, this speaks primitives and returns frozen records.
Times are always passed in (the repository never reads a clock).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select, update

from tradelab.store import jobs_models as jm
from tradelab.store.errors import StoreError
from tradelab.store.models import SEVERITIES
from tradelab.store.reads import check_choice
from tradelab.store.types import to_utc

JR = cast(Table, jm.JobRun.__table__)
# Typed as a Table (mypy sees ``__table__`` as a FromClause, which insert/update refuse).
ND = cast(Table, jm.NotificationDelivery.__table__)


@dataclass(frozen=True, slots=True)
class JobRunRecord:
    """One notebook job run (see :class:`tradelab.store.jobs_models.JobRun`)."""

    id: int
    job: str
    notebook: str
    parameters: dict[str, Any]
    trigger: str
    status: str
    attempts: int
    code_version: str
    git_commit: str | None
    notebook_sha256: str
    strategy_sha256: str | None
    data_fingerprint: str | None
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    output_path: str | None
    replay_of: int | None
    summary: dict[str, Any] | None

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, ``None`` while running."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One notification delivery to one channel."""

    id: int
    event_type: str
    severity: str
    channel: str
    target: str
    title: str
    reference: str | None
    status: str
    attempts: int
    error: str | None
    created_at: datetime
    finished_at: datetime | None


def _clip(text: str | None, n: int) -> str | None:
    # Error texts (tracebacks) can be long; the columns are bounded.
    if text is None:
        return None
    return text if len(text) <= n else text[: n - 3] + "..."


class JobsRepo:
    """Job-run and delivery persistence on a :class:`tradelab.store.Store`.

    Parameters
    ----------
    store
        An upgraded store (schema at head).
    """

    def __init__(self, store: Any) -> None:
        self.store = store

    def _write(self) -> Any:
        # The store's write engine starts SQLite transactions with BEGIN IMMEDIATE.
        return self.store._write.begin()

    # -- job runs --------------------------------------------------------
    def start_run(self, *, job: str, notebook: str, parameters: Mapping[str, Any], trigger: str,
                  code_version: str, notebook_sha256: str, started_at: datetime,
                  git_commit: str | None = None, strategy_sha256: str | None = None,
                  replay_of: int | None = None, status: str = "running") -> int:
        """Insert a run (``running`` unless told otherwise) and return its id."""
        with self._write() as conn:
            result = conn.execute(insert(JR).values(
                job=job, notebook=notebook, parameters=dict(parameters),
                trigger=check_choice("trigger", trigger, jm.JOB_TRIGGERS),
                status=check_choice("status", status, jm.JOB_STATUSES), attempts=0,
                code_version=code_version, git_commit=git_commit, notebook_sha256=notebook_sha256,
                strategy_sha256=strategy_sha256, started_at=to_utc(started_at),
                replay_of=replay_of))
            return int(result.inserted_primary_key[0])

    def update_run(self, run_id: int, **values: Any) -> None:
        """Update columns of a run (``status``, ``attempts``, ``output_path``, ``summary``...)."""
        if "status" in values:
            check_choice("status", values["status"], jm.JOB_STATUSES)
        if "error" in values:
            values["error"] = _clip(values["error"], 4000)
        for key in ("finished_at", "started_at"):
            if values.get(key) is not None:
                values[key] = to_utc(values[key])
        with self._write() as conn:
            if conn.execute(update(JR).where(JR.c.id == run_id).values(**values)).rowcount != 1:
                raise StoreError(f"unknown job run id {run_id!r}")

    def finish_run(self, run_id: int, status: str, *, finished_at: datetime,
                   error: str | None = None, **values: Any) -> None:
        """Close a run with a final status."""
        check_choice("status", status, jm.FINAL_JOB_STATUSES)
        self.update_run(run_id, status=status, finished_at=finished_at, error=error, **values)

    def get_run(self, run_id: int) -> JobRunRecord | None:
        """One run by id, or ``None``."""
        with self.store.engine.connect() as conn:
            row = conn.execute(select(JR).where(JR.c.id == run_id)).one_or_none()
        return JobRunRecord(**row._mapping) if row is not None else None

    def job_names(self) -> list[str]:
        """The names of every job that has run, sorted."""
        with self.store.engine.connect() as conn:
            return list(conn.execute(select(JR.c.job).distinct().order_by(JR.c.job)).scalars().all())

    def runs(self, job: str | None = None, limit: int | None = None) -> list[JobRunRecord]:
        """Runs (of one job, or all), newest first."""
        q = select(JR).order_by(JR.c.started_at.desc(), JR.c.id.desc())
        if job is not None:
            q = q.where(JR.c.job == job)
        if limit is not None:
            q = q.limit(limit)
        with self.store.engine.connect() as conn:
            return [JobRunRecord(**r._mapping) for r in conn.execute(q)]

    # -- deliveries ------------------------------------------------------
    def add_delivery(self, *, event_type: str, severity: str, channel: str, target: str, title: str,
                     created_at: datetime, reference: str | None = None, status: str = "pending",
                     attempts: int = 0, error: str | None = None,
                     finished_at: datetime | None = None) -> int:
        """Insert a delivery row and return its id (``target`` must already be masked)."""
        with self._write() as conn:
            result = conn.execute(insert(ND).values(
                event_type=event_type, severity=check_choice("severity", severity, SEVERITIES),
                channel=channel, target=_clip(target, 500), title=_clip(title, 500),
                reference=_clip(reference, 100),
                status=check_choice("status", status, jm.DELIVERY_STATUSES), attempts=attempts,
                error=_clip(error, 2000), created_at=to_utc(created_at),
                finished_at=to_utc(finished_at) if finished_at else None))
            return int(result.inserted_primary_key[0])

    def add_deliveries(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert finished delivery rows in one transaction and return how many.

        Each row takes the keyword arguments of :meth:`add_delivery`. The
        notifier records notifications it gave up on (a full queue, shutdown)
        in batches: one transaction per row could not keep up with a flood.
        """
        if not rows:
            return 0
        values = [{
            "event_type": r["event_type"],
            "severity": check_choice("severity", r["severity"], SEVERITIES),
            "channel": r["channel"], "target": _clip(r["target"], 500),
            "title": _clip(r["title"], 500), "reference": _clip(r.get("reference"), 100),
            "status": check_choice("status", r.get("status", "pending"), jm.DELIVERY_STATUSES),
            "attempts": r.get("attempts", 0), "error": _clip(r.get("error"), 2000),
            "created_at": to_utc(r["created_at"]),
            "finished_at": to_utc(r["finished_at"]) if r.get("finished_at") else None,
        } for r in rows]
        with self._write() as conn:
            conn.execute(insert(ND), values)
        return len(values)

    def update_delivery(self, delivery_id: int, *, status: str, attempts: int,
                        error: str | None = None, finished_at: datetime | None = None) -> None:
        """Record the outcome of the latest attempt."""
        with self._write() as conn:
            conn.execute(update(ND).where(ND.c.id == delivery_id).values(
                status=check_choice("status", status, jm.DELIVERY_STATUSES), attempts=attempts,
                error=_clip(error, 2000), finished_at=to_utc(finished_at) if finished_at else None))

    def deliveries(self, *, event_type: str | None = None, channel: str | None = None,
                   limit: int | None = None) -> list[DeliveryRecord]:
        """Deliveries, oldest first, optionally filtered."""
        q = select(ND).order_by(ND.c.created_at, ND.c.id)
        if event_type is not None:
            q = q.where(ND.c.event_type == event_type)
        if channel is not None:
            q = q.where(ND.c.channel == channel)
        if limit is not None:
            q = q.limit(limit)
        with self.store.engine.connect() as conn:
            return [DeliveryRecord(**r._mapping) for r in conn.execute(q)]


__all__ = ["DeliveryRecord", "JobRunRecord", "JobsRepo"]
