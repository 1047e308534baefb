"""During a kill-switch halt a declared exit that strictly reduces its position passes.

Entries, reversals, orders that would flip a position and exits from signals are
still denied; the approval is recorded as an ``info`` risk alert saying why.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tradelab.bus import EventBus
from tradelab.clock import SimClock
from tradelab.events import OrderApproved, OrderRequested, RiskAlert
from tradelab.orders.model import Order
from tradelab.portfolio import Portfolio
from tradelab.risk.manager import KillSwitch, RiskManager

T = datetime(2020, 1, 2, 15, 0, tzinfo=UTC)


def _halted(held: int):
    bus, clock = EventBus(), SimClock(T)
    pf = Portfolio(100_000)
    if held:
        pf.apply_fill("SPX", "buy" if held > 0 else "sell", Decimal(abs(held)), Decimal(100), Decimal(0))
    approved, rejected, alerts = [], [], []
    bus.subscribe(OrderApproved, lambda ev: approved.append(ev.client_order_id))
    bus.subscribe(RiskAlert, alerts.append)
    ks = KillSwitch("acc", bus, clock)
    rm = RiskManager("acc", pf, bus, clock, ks, lambda cid, r: rejected.append((cid, r)))
    rm.exits = {"stop-exit": "sl"}
    ks.engage("operator halt", by="operator")
    return bus, approved, rejected, alerts


def _request(bus: EventBus, cid: str, side: str, qty: Decimal | None) -> None:
    order = Order(cid, "acc", "s", "SPX", side, qty, T, estimate=qty or Decimal(0),
                  reference_price=Decimal(100))
    bus.publish(OrderRequested(T, cid, None, "new", "", order))


@given(held=st.integers(-50, 50), qty=st.integers(1, 60), side=st.sampled_from(["buy", "sell"]))
def test_a_declared_exit_passes_a_halt_exactly_when_it_reduces_the_position(held, qty, side) -> None:
    bus, approved, rejected, alerts = _halted(held)
    _request(bus, "stop-exit", side, Decimal(qty))
    reduces = qty <= held if side == "sell" else qty <= -held
    assert (approved == ["stop-exit"]) is reduces
    if reduces:
        assert rejected == []
        assert [(a.rule, a.severity, a.client_order_id) for a in alerts] == \
            [("kill_switch", "info", "stop-exit")]
        assert alerts[0].message.startswith(f"sl exit passes the halt (operator halt): {side} {qty} ")
    else:  # an entry, or more than the position (a flip): denied like any order
        assert len(rejected) == 1 and rejected[0][1].startswith("kill_switch: kill switch engaged")


def test_only_declared_exits_pass_and_never_sized_at_fill() -> None:
    bus, approved, rejected, _ = _halted(10)
    _request(bus, "signal-exit", "sell", Decimal(10))  # the strategy's own exit signal
    _request(bus, "stop-exit", "sell", None)           # no quantity: cannot be shown to reduce
    assert approved == [] and [cid for cid, _ in rejected] == ["signal-exit", "stop-exit"]
