"""Job runs and deliveries persist on SQLite and PostgreSQL; the migration matches the models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tradelab.store import Store
from tradelab.store.jobs_models import SCHEDULER_TABLE
from tradelab.store.jobs_repo import JobsRepo
from tradelab.store.migrate import schema_diff

MINE = ("job_runs", "notification_deliveries", SCHEDULER_TABLE)
T0 = datetime(2026, 11, 24, 9, tzinfo=UTC)


def test_job_tables_match_the_models_after_upgrade(store_url: str) -> None:
    store = Store(store_url)
    store.upgrade()
    diff = [d for d in schema_diff(store.engine) if any(t in repr(d) for t in MINE)]
    store.close()
    assert diff == []


def test_apscheduler_table_layout_is_apschedulers_own(store_url: str) -> None:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    store = Store(store_url)
    store.upgrade()
    js = SQLAlchemyJobStore(engine=store.engine, tablename=SCHEDULER_TABLE)
    ours = store.engine.dialect
    theirs = {c.name: (c.type.compile(ours), c.nullable, c.primary_key) for c in js.jobs_t.columns}
    from tradelab.store.models import Base

    mine = {c.name: (c.type.compile(ours), c.nullable, c.primary_key)
            for c in Base.metadata.tables[SCHEDULER_TABLE].columns}
    assert mine == theirs
    js.start(None, "default")  # creates the table if missing: here it must already exist
    assert js.get_all_jobs() == []
    store.close()


def test_runs_round_trip(store_url: str) -> None:
    store = Store(store_url)
    store.upgrade()
    repo = JobsRepo(store)
    first = repo.start_run(job="nightly", notebook="nb.ipynb", parameters={"fast": 10, "p": {"a": [1]}},
                           trigger="schedule", code_version="git:abc", notebook_sha256="n" * 64,
                           started_at=T0, git_commit="abc")
    second = repo.start_run(job="nightly", notebook="nb.ipynb", parameters={}, trigger="replay",
                            code_version="sha256:x", notebook_sha256="n" * 64,
                            started_at=T0 + timedelta(minutes=5), replay_of=first)
    repo.update_run(first, attempts=2)
    repo.finish_run(first, "failed", finished_at=T0 + timedelta(seconds=90), error="x" * 5000,
                    data_fingerprint="sha256:d", summary={"equity": 1.5})
    got = repo.get_run(first)
    assert got is not None
    assert (got.status, got.attempts, got.duration, got.parameters) == (
        "failed", 2, 90.0, {"fast": 10, "p": {"a": [1]}})
    assert got.error is not None and len(got.error) == 4000 and got.summary == {"equity": 1.5}
    assert [r.id for r in repo.runs("nightly")] == [second, first]
    assert repo.get_run(second).replay_of == first  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="status"):
        repo.finish_run(second, "running", finished_at=T0)
    d = repo.add_delivery(event_type="job_failed", severity="error", channel="ops",
                          target="json://h/x", title="t", created_at=T0, reference="job_run:1")
    repo.update_delivery(d, status="sent", attempts=3, finished_at=T0 + timedelta(seconds=1))
    [row] = repo.deliveries(channel="ops")
    assert (row.status, row.attempts, row.reference) == ("sent", 3, "job_run:1")
    store.close()
