"""Data-quality outcomes in the store, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from tradelab.bus import EventBus
from tradelab.clock import LiveClock, SimClock
from tradelab.config import QualitySettings
from tradelab.data.quality import QualityGate
from tradelab.errors import DataQualityError
from tradelab.store import Store

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)



@pytest.fixture()
def run_id(store: Store) -> int:
    with store.transaction() as tx:
        tx.ensure_account("paper", Decimal("100000"))
        return tx.start_run("paper", "sma_cross", symbol="SPX", source="ws", mode="paper",
                            started_at=T0, params={})


def test_rows_are_written_in_one_batch_and_read_back_per_run(store: Store, run_id: int) -> None:
    repo = store.quality
    account_id = repo.account_id("paper")
    rows = [{"source": "ws", "symbol": "SPX", "kind": "rejected", "reason": "not_json", "count": 3,
             "at": T0, "run_id": run_id, "account_id": account_id},
            {"source": "ws", "symbol": "SPX", "kind": "rejected", "reason": "not_json", "count": 2,
             "at": T0 + timedelta(seconds=1), "run_id": run_id, "account_id": account_id},
            {"source": "ws", "symbol": "SPX", "kind": "gap", "reason": "interval", "count": 1,
             "detail": "x" * 5000, "at": T0 + timedelta(seconds=2), "run_id": run_id},
            {"source": "file", "symbol": "BAD", "kind": "breach", "reason": "max_rejected",
             "count": 31, "at": T0 + timedelta(seconds=3)}]     # a run that never started
    assert repo.record(rows) == 4
    mine = repo.events(run_id)
    assert [(r.kind, r.reason, r.count) for r in mine] == \
        [("rejected", "not_json", 3), ("rejected", "not_json", 2), ("gap", "interval", 1)]
    assert mine[0].account_id == account_id and mine[0].at == T0
    assert len(mine[2].detail or "") == 2000                  # clipped to the column
    assert repo.totals(run_id) == Counter({"not_json": 5})
    (orphan,) = repo.events(kind="breach")
    assert (orphan.run_id, orphan.account_id, orphan.count) == (None, None, 31)
    assert [r.reason for r in repo.events(limit=2)] == ["interval", "max_rejected"]  # newest


def test_unknown_kind_is_refused_before_the_database(store: Store) -> None:
    with pytest.raises(ValueError, match="kind='bogus'"):
        store.quality.record([{"source": "ws", "symbol": "SPX", "kind": "bogus", "reason": "r",
                               "count": 1, "at": T0}])
    assert store.quality.events() == []


class Timer:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def bound_gate(store: Store, run_id: int, settings: QualitySettings, timer: Timer) -> QualityGate:
    gate = QualityGate(settings, store=store, account="paper", timer=timer, flush_seconds=0.5)
    gate.feed_source, gate.feed_symbol = "ws://venue:1", "SPX"
    engine: Any = SimpleNamespace(bus=EventBus(), clock=SimClock(), run_id=run_id, recorder=None,
                                  account="paper", wall_clock=LiveClock(), feed=None)
    gate.bind(engine)
    return gate


def test_gate_aggregates_counts_and_writes_on_the_flush_cadence(store: Store, run_id: int) -> None:
    timer = Timer()
    gate = bound_gate(store, run_id, QualitySettings(), timer)
    for n in range(1, 201):                                   # 200 rejects, seen one by one
        gate.observe_feed({"rejected": {"not_json": n}})
        gate.flush(force=False)
    assert store.quality.events(run_id) == []                 # not a transaction per message
    timer.now = 0.6
    assert gate.flush(force=False) == 1                       # one row for the 200
    (row,) = store.quality.events(run_id)
    assert (row.kind, row.reason, row.count) == ("rejected", "not_json", 200)
    assert row.account_id == store.quality.account_id("paper")


def test_a_breach_is_written_at_once_with_what_is_pending(store: Store, run_id: int) -> None:
    timer = Timer()
    gate = bound_gate(store, run_id, QualitySettings(max_rejected=20), timer)
    gate.observe_feed({"rejected": {"not_json": 18, "high_low": 13}})
    breach = gate.check_live()                                # no time has passed
    assert breach is not None
    rows = store.quality.events(run_id)
    assert store.quality.totals(run_id) == Counter({"not_json": 18, "high_low": 13})
    (stored,) = [r for r in rows if r.kind == "breach"]
    assert (stored.reason, stored.count) == ("max_rejected", 31)
    assert stored.detail is not None and str(breach) in stored.detail


def test_a_refused_start_is_stored_without_a_run(store: Store, run_id: int, orcl: Any) -> None:
    from tradelab.data.validate import validate_bars

    bad = orcl.copy()
    bad.iloc[1:6, bad.columns.get_loc("high")] = bad["low"].iloc[1:6] * 0.5
    _, rep = validate_bars(bad, "drop", source="file", symbol="ORCL")
    gate = QualityGate(QualitySettings(max_rejected=2), store=store, account="paper")
    with pytest.raises(DataQualityError, match="max_rejected 2"):
        gate.check_start(rep)
    (breach,) = store.quality.events(kind="breach")
    assert (breach.run_id, breach.account_id) == (None, store.quality.account_id("paper"))
    assert store.quality.totals(None) == Counter({"high_low": 5, "open_close_range": 5})


def test_data_quality_command_lists_a_runs_outcomes(store: Store, run_id: int,
                                                    tmp_path: Any) -> None:
    import json

    from typer.testing import CliRunner

    import tradelab.cli.data_cmd  # noqa: F401  (registers the commands)
    from tradelab.cli import app

    store.quality.record([
        {"source": "ws", "symbol": "SPX", "kind": "rejected", "reason": "not_json", "count": 4,
         "at": T0, "run_id": run_id},
        {"source": "ws", "symbol": "SPX", "kind": "breach", "reason": "max_rejected", "count": 4,
         "detail": "rejected messages 4 > max_rejected 3", "at": T0, "run_id": run_id},
        {"source": "file", "symbol": "X", "kind": "gap", "reason": "interval", "count": 1,
         "at": T0}])
    env = {"TRADELAB_HOME": str(tmp_path), "TRADELAB_CONFIG": "",
           "TRADELAB__CACHE__DIR": str(tmp_path / "cache")}
    url = store.url.render_as_string(hide_password=False)
    res = CliRunner().invoke(app, ["data", "quality", "--run", str(run_id), "--db", url, "--json"],
                             env=env)
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert [(r["kind"], r["reason"], r["count"]) for r in rows] == \
        [("rejected", "not_json", 4), ("breach", "max_rejected", 4)]
    text = CliRunner().invoke(app, ["data", "quality", "--db", url], env=env)
    assert text.exit_code == 0, text.output
    assert "max_rejected" in text.output and "file:X interval 1" in text.output
