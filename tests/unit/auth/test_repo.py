"""Store additions: strategy flags (the engine hook), account listing, audit queries."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.unit.api.helpers import T0
from tradelab.store import Store, UnknownAccountError
from tradelab.store.auth_repo import AuthRepo, accounts, disabled_strategies


def test_strategy_flags_round_trip_and_feed_the_engine_hook(store: Store) -> None:
    with store.transaction() as tx:
        tx.ensure_account("paper", Decimal("1000"))
        tx.ensure_account("live", Decimal("1000"))
    repo = AuthRepo(store)
    assert disabled_strategies(store, "paper") == frozenset()
    repo.set_strategy_enabled("paper", "sma_cross", False, at=T0, by="alice", reason="drawdown")
    repo.set_strategy_enabled("paper", "rsi", False, at=T0, by="alice")
    repo.set_strategy_enabled("paper", "rsi", True, at=T0 + timedelta(minutes=1), by="bob")
    assert disabled_strategies(store, "paper") == {"sma_cross"}
    assert disabled_strategies(store, "live") == frozenset()
    flags = repo.strategy_flags("paper")
    assert flags["rsi"].enabled and flags["rsi"].changed_by == "bob"
    assert flags["sma_cross"].reason == "drawdown"
    with pytest.raises(UnknownAccountError):
        disabled_strategies(store, "nope")


def test_accounts_are_listed_by_name(store: Store) -> None:
    with store.transaction() as tx:
        tx.ensure_account("zeta", Decimal("1"))
        tx.ensure_account("alpha", Decimal("2"))
    assert [a.name for a in accounts(store)] == ["alpha", "zeta"]


def test_audit_counts_respect_actor_event_and_time(store: Store) -> None:
    repo = AuthRepo(store)
    for i in range(3):
        repo.add_audit("login_failed", "failed", T0 + timedelta(minutes=i), actor="a", ip="1.2.3.4")
    repo.add_audit("login_failed", "failed", T0, actor="b")
    assert repo.count_events("a", ["login_failed"], T0) == 2
    assert repo.last_event_at("a", ["login_failed"]) == T0 + timedelta(minutes=2)
    assert [e.actor for e in repo.audit(limit=2)] == ["a", "a"]
    with pytest.raises(ValueError, match="outcome"):
        repo.add_audit("x", "maybe", T0)
