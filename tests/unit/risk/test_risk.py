from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest

from tradelab.bus import EventBus
from tradelab.clock import SimClock
from tradelab.events import KillSwitchEngaged, OrderApproved, RiskAlert
from tradelab.orders.model import Order
from tradelab.portfolio import Portfolio
from tradelab.risk import rules
from tradelab.risk.manager import KillSwitch, RiskManager
from tradelab.risk.rules import RiskContext, RiskLimits

T = datetime(2020, 1, 2, 15, 0, tzinfo=UTC)


def _ctx(**kw) -> RiskContext:
    base = dict(at=T, symbol="SPX", side="buy", quantity=Decimal(10), price=Decimal(100),
                position=Decimal(0), equity=Decimal(10_000), peak_equity=Decimal(10_000),
                day_start_equity=Decimal(10_000), gross_exposure=Decimal(0))
    return RiskContext(**{**base, **kw})


@pytest.mark.parametrize(("rule", "limits", "ctx", "denied"), [
    (rules.max_position, RiskLimits(max_position=Decimal(5)), {}, True),
    (rules.max_position, RiskLimits(max_position=Decimal(10)), {}, False),
    (rules.max_order_notional, RiskLimits(max_order_notional=Decimal(999)), {}, True),
    (rules.max_gross_exposure, RiskLimits(max_gross_exposure=Decimal(500)), {}, True),
    (rules.max_gross_exposure, RiskLimits(max_gross_exposure=Decimal(500)),
     {"side": "sell", "position": Decimal(20), "gross_exposure": Decimal(2000)}, False),
    (rules.max_daily_loss, RiskLimits(max_daily_loss=0.05), {"equity": Decimal(9_400)}, True),
    (rules.max_drawdown, RiskLimits(max_drawdown=0.1), {"equity": Decimal(9_100)}, False),
    (rules.max_orders_per_minute, RiskLimits(max_orders_per_minute=3), {"orders_last_minute": 3}, True),
    (rules.trading_hours, RiskLimits(trading_hours=(time(14, 30), time(21, 0))), {}, False),
    (rules.trading_hours, RiskLimits(trading_hours=(time(16, 0), time(21, 0))), {}, True),
    (rules.instrument_allowed, RiskLimits(allowed_symbols=frozenset({"QQQ"})), {}, True),
])
def test_rules_are_pure_functions(rule, limits, ctx, denied) -> None:
    reason = rule(_ctx(**ctx), limits)
    assert (reason is not None) is denied
    assert rule(_ctx(**ctx), RiskLimits()) is None  # every rule is off by default


def _manager(limits=None, per_strategy=None):
    bus, clock = EventBus(), SimClock(T)
    pf = Portfolio(10_000)
    rejected, approved, alerts, kills = [], [], [], []
    bus.subscribe(OrderApproved, approved.append)
    bus.subscribe(RiskAlert, alerts.append)
    bus.subscribe(KillSwitchEngaged, kills.append)
    ks = KillSwitch("acc", bus, clock)
    rm = RiskManager("acc", pf, bus, clock, ks, lambda cid, r: rejected.append((cid, r)),
                     limits, per_strategy)
    return rm, bus, rejected, approved, alerts, kills


def _request(bus, strategy="s", qty=10):
    from tradelab.events import OrderRequested

    o = Order("c", "acc", strategy, "SPX", "buy", Decimal(qty), T, reference_price=Decimal(100))
    bus.publish(OrderRequested(T, "c", None, "new", "", o))


def test_per_strategy_limits_override_account_limits() -> None:
    _, bus, rejected, approved, alerts, _ = _manager(
        RiskLimits(max_order_notional=Decimal(5_000)), {"tight": RiskLimits(max_order_notional=Decimal(500))})
    _request(bus, "loose")
    _request(bus, "tight")
    assert len(approved) == 1 and len(rejected) == 1
    assert "max_order_notional" in rejected[0][1] and alerts[0].rule == "max_order_notional"


def test_daily_loss_is_measured_from_the_previous_close() -> None:
    rm, _, _, _, alerts, kills = _manager(RiskLimits(max_daily_loss=0.05))
    day1, day2 = T, T + timedelta(days=1)
    rm.on_equity(day1, Decimal(10_000))
    rm.on_equity(day2, Decimal(9_600))          # -4 % at the first bar of the day
    assert not kills and rm.day_start_equity == Decimal(10_000)
    rm.on_equity(day2 + timedelta(hours=1), Decimal(9_450))  # -5.5 % since the close
    assert kills and alerts[-1].rule == "max_daily_loss"


def test_drawdown_breach_engages_kill_switch_and_blocks_orders() -> None:
    rm, bus, rejected, approved, alerts, kills = _manager(RiskLimits(max_drawdown=0.1))
    rm.on_equity(T, Decimal(10_000))
    rm.on_equity(T, Decimal(8_900))
    assert rm.kill_switch.engaged and kills and alerts[-1].severity == "critical"
    _request(bus)
    assert not approved and "kill switch" in rejected[-1][1]
    rm.kill_switch.release("operator resume", "ops")
    _request(bus)
    assert approved
