"""Builders shared by the API tests (unit and integration): a real app on a real store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tradelab.api.app import create_app
from tradelab.auth import ApiSettings, AuthSettings
from tradelab.clock import SimClock
from tradelab.monitor.metrics import Metrics
from tradelab.store import Store
from tradelab.strategy.registry import StrategyRegistry

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
SECRET = "unit-test-jwt-secret-0123456789abcdef"
# Cheap argon2 parameters: the tests exercise the logic, not the cost.
FAST = {"argon2_time_cost": 1, "argon2_memory_cost": 1024, "argon2_parallelism": 1}
PASSWORDS = {"admin": "admin-passphrase-42", "trader": "trader-passphrase-42",
             "viewer": "viewer-passphrase-42"}
UNLIMITED = ApiSettings(user_rate=1e6, user_burst=10**6, ip_rate=1e6, ip_burst=10**6,
                        login_rate=1e6, login_burst=10**6)


class FakeTimer:
    """A monotonic timer the test moves by hand (rate-limit refills)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def auth_settings(**over: Any) -> AuthSettings:
    return AuthSettings(jwt_secret=SECRET, **{**FAST, **over})


def seed_trading(store: Store) -> int:
    """An account with a run, an order, a fill, a position, equity and a risk event."""
    with store.transaction() as tx:
        tx.ensure_account("paper", Decimal("100000"))
        run = tx.start_run("paper", "sma_cross", symbol="SPY", source="sample", mode="paper",
                           started_at=T0, params={"fast": 10, "slow": 30})
        tx.upsert_order("c-1", at=T0, account="paper", run_id=run, symbol="SPY", side="buy",
                        type="market", quantity=Decimal("10"), status="filled",
                        filled_quantity=Decimal("10"), avg_fill_price=Decimal("470.5"))
        tx.add_fill("f-1", "c-1", "SPY", "buy", Decimal("10"), Decimal("470.5"), Decimal("1.25"), T0)
        tx.set_position("paper", "SPY", Decimal("10"), Decimal("470.5"), Decimal("0"))
        tx.set_cash("paper", Decimal("95293.75"))
        tx.add_equity_snapshot("paper", T0, Decimal("95293.75"), Decimal("4705"),
                               Decimal("99998.75"), Decimal("0.0000125"), run_id=run)
        tx.add_risk_event("paper", "max_position", "warning", "near the limit", T0, "sma_cross")
    return run


@dataclass
class Harness:
    """A running app (TestClient), its store, clocks and the seeded users."""

    app: Any
    client: TestClient
    store: Store
    clock: SimClock
    timer: FakeTimer
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def auth(self) -> Any:
        return self.app.state.services.auth

    def login(self, name: str, password: str | None = None, **extra: Any) -> Any:
        return self.client.post("/auth/login", json={"username": name,
                                                     "password": password or PASSWORDS[name],
                                                     **extra})

    def headers(self, name: str) -> dict[str, str]:
        """Bearer headers of a (cached) login of ``name``."""
        if name not in self.tokens:
            r = self.login(name)
            assert r.status_code == 200, r.text
            self.tokens[name] = r.json()
        return {"Authorization": f"Bearer {self.tokens[name]['access_token']}"}

    def advance(self, seconds: float) -> None:
        self.clock.advance(self.clock.now() + timedelta(seconds=seconds))


def build(store_url: str, *, api: ApiSettings = UNLIMITED, auth: AuthSettings | None = None,
          users: bool = True, seed: bool = True, start: datetime = T0, **kw: Any) -> Harness:
    """A migrated store, a registry over ``strategies/``, the app and three users."""
    store = Store(store_url)
    store.upgrade()
    if seed:
        seed_trading(store)
    clock, timer = SimClock(start), FakeTimer()
    registry = StrategyRegistry.discover([ROOT / "strategies"], entry_points=False)
    app = create_app(store=store, registry=registry, metrics=Metrics(), auth=auth or auth_settings(), api=api,
                     clock=clock, timer=timer, **kw)
    if users:
        for name, pw in PASSWORDS.items():
            app.state.services.auth.add_user(name, pw, name, actor="test")
    return Harness(app, TestClient(app), store, clock, timer)
