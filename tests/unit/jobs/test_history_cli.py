"""`jobs history` has headers and each run's result; a replay's results are compared."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from tradelab.cli import app
from tradelab.cli.jobs_cmd import _compare_results
from tradelab.store import Store
from tradelab.store.jobs_repo import JobsRepo

T = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def _run(repo: JobsRepo, summary: dict | None, replay_of: int | None = None) -> int:
    rid = repo.start_run(job="daily", notebook="nb.ipynb", parameters={}, trigger="manual",
                         code_version="git:x", notebook_sha256="0" * 64, started_at=T,
                         replay_of=replay_of)
    repo.finish_run(rid, "succeeded", finished_at=T, summary=summary)
    return rid


def test_history_prints_headers_and_results(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'j.db'}"
    store = Store(db)
    store.upgrade()
    repo = JobsRepo(store)
    _run(repo, {"equity": 105000.0, "total_return": 0.05, "fills": 12})
    _run(repo, None)
    res = CliRunner().invoke(app, ["jobs", "history", "--db", db])
    assert res.exit_code == 0, res.output
    header, newest, oldest = res.output.splitlines()[:3]
    assert header.split()[:3] == ["ID", "STARTED", "(UTC)"] and "RETURN" in header and "FILLS" in header
    assert newest.split()[-2:] == ["-", "-"]
    assert "+5.00%" in oldest and oldest.split()[-1] == "12"


def test_replay_comparison_reports_a_differing_result(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'j.db'}"
    store = Store(db)
    store.upgrade()
    repo = JobsRepo(store)
    first = _run(repo, {"equity": 105000.0, "total_return": 0.05, "fills": 12})
    same = repo.get_run(_run(repo, {"equity": 105000.0, "total_return": 0.05, "fills": 12}, first))
    other = repo.get_run(_run(repo, {"equity": 104000.0, "total_return": 0.04, "fills": 12}, first))
    assert _compare_results(db, first, same) is False
    assert _compare_results(db, first, other) is True
