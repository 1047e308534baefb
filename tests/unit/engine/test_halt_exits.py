"""A halted engine still closes positions at their declared stops; entries stay denied.

Hand-made bars whose volume scripts the strategy (1 = entry, 2 = exit), see
``tests/unit/engine/test_sides.py``; the kill switch is engaged after the entry
filled.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tradelab.app import assemble_engine
from tradelab.engine import EngineConfig, ReplayFeed
from tradelab.execution import Execution
from tradelab.orders.model import OrderState
from tradelab.strategy.exits import Stops
from tradelab.testing import ScriptedStrategy, scripted_bars

ROWS = [(100, 101, 99, 100, 1),   # entry decided
        (100, 101, 99, 100, 0),   # filled at the open: long; then the halt
        (99, 100, 98, 99, 0),
        (97, 98, 93, 96, 0),      # the low crosses the 5 % stop (95): closed at the stop
        (96, 97, 95, 96, 1),      # an entry signal during the halt: denied
        (96, 97, 95, 96, 0)]


def _engine(stops: Stops):
    bars = scripted_bars(ROWS)
    return assemble_engine([(ScriptedStrategy(), "X")], ReplayFeed(bars, "X"),
                           Execution(cash=10_000.0, fees=0.0), config=EngineConfig(stops=stops))


@pytest.mark.parametrize(("stops", "kind", "exit_day", "price"), [
    (Stops(sl=0.05), "sl", 4, Decimal(95)),
    (Stops(time_bars=2), "time", 5, Decimal(96)),  # decided on the 4th's close, filled at the 5th's open
], ids=["stop-loss", "time-stop"])
def test_a_declared_exit_closes_the_position_during_a_halt(stops, kind, exit_day, price) -> None:
    engine = _engine(stops)

    def halt_after_entry(bar) -> None:
        if engine.bars == 2:
            assert engine.portfolio.position("X") > 0
            engine.kill_switch.engage("operator halt", by="operator")

    result = engine.run(on_bar=halt_after_entry)
    assert engine.portfolio.position("X") == 0
    buy, sell = result.fills
    assert (sell.side, sell.quantity, sell.price) == ("sell", buy.quantity, price)
    assert sell.at.day == exit_day and engine.sides.exit_reasons[sell.client_order_id] == kind
    orders = list(engine.orders.orders.values())
    entry = [o for o in orders if o.side == "buy" and o.created_at.day == 5]
    assert len(entry) == 1 and entry[0].state is OrderState.REJECTED
    assert entry[0].reason.startswith("kill_switch: kill switch engaged (operator halt")
    passed = [a for a in result.risk_alerts if a.severity == "info"]
    assert [(a.rule, a.client_order_id) for a in passed] == [("kill_switch", sell.client_order_id)]
