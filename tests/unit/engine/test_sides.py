"""Shorts and declared exits in the engine, on hand-made bars (tradelab.engine.sides).

The bars' volume scripts the strategy: 1 = entry, 2 = exit, 3 = short entry, 4 =
short exit (decided on that bar's close, filled at the next open).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tradelab.app import assemble_engine
from tradelab.engine import EngineConfig, ReplayFeed
from tradelab.engine.decide import Action, decide, side_flags
from tradelab.execution import Execution
from tradelab.orders.model import OrderState
from tradelab.risk.manager import FLATTEN, FLATTEN_MARK
from tradelab.strategy.exits import Stops
from tradelab.testing import ScriptedLongShort as ScriptedLS
from tradelab.testing import ScriptedStrategy as Scripted
from tradelab.testing import scripted_bars as _bars

EX = Execution(cash=10_000.0, fees=0.0)


def _run(rows, strategy=None, execution=EX, on_bar=None, **config):
    bars = _bars(rows)
    engine = assemble_engine([(strategy or Scripted(), "X")], ReplayFeed(bars, "X"), execution,
                             config=EngineConfig(**config))
    result = engine.run(on_bar=on_bar)
    fills = [(f.at.date().isoformat(), f.side, f.quantity, f.price) for f in result.fills]
    return engine, result, fills


def _d(x: float | int) -> Decimal:
    return Decimal(repr(x))


def test_a_gap_through_the_stop_fills_at_the_open() -> None:
    rows = [(100, 101, 99, 100, 1),      # entry decided
            (100, 102, 99, 101, 0),      # bought 100 at the open (100)
            (90, 92, 88, 91, 0),         # opens through the 95 stop: out at the open
            (91, 93, 90, 92, 0)]
    _, result, fills = _run(rows, stops=Stops(sl=0.05))
    assert fills == [("2024-01-02", "buy", _d(100), _d(100)), ("2024-01-03", "sell", _d(100), _d(90))]
    assert result.equity == Decimal(9_000)


def test_stop_loss_wins_when_one_bar_touches_both_levels() -> None:
    rows = [(100, 101, 99, 100, 1), (100, 101, 99, 100, 0),
            (100, 106, 94, 100, 0),      # touches tp 105 and sl 95: the stop-loss wins
            (100, 101, 99, 100, 0)]
    _, _, fills = _run(rows, stops=Stops(sl=0.05, tp=0.05))
    assert fills[-1] == ("2024-01-03", "sell", _d(100), _d(95))


def test_take_profit_fills_at_its_level_with_slippage() -> None:
    rows = [(100, 101, 99, 100, 1), (100, 101, 99, 100, 0),
            (101, 112, 100, 104, 0),     # tp 110 inside the bar
            (100, 101, 99, 100, 0)]
    ex = Execution(cash=10_000.0, fees=0.0, slippage=0.01)
    _, _, fills = _run(rows, execution=ex, stops=Stops(tp=0.10))
    entry = fills[0][3]
    assert entry == _d(101.0)  # the open plus 1 % slippage
    level = 101.0 * 1.10
    assert fills[-1][:3] == ("2024-01-03", "sell", fills[0][2])
    assert float(fills[-1][3]) == pytest.approx(level * 0.99, rel=1e-12)


def test_the_trailing_reference_moves_after_the_bar_was_checked() -> None:
    rows = [(100, 101, 99, 100, 1),
            (100, 101, 99, 100, 0),      # bought at 100: the trailing stop starts at 90
            (101, 120, 105, 118, 0),     # checked against 90 (no fill), then the high 120 → 108
            (115, 116, 107, 110, 0),     # 108 is inside this bar: out at 108
            (110, 111, 109, 110, 0)]
    _, _, fills = _run(rows, stops=Stops(trail=0.10))
    assert fills[-1] == ("2024-01-04", "sell", _d(100), _d(108))


def test_a_stop_cancels_the_bars_pending_signal_order() -> None:
    rows = [(100, 101, 99, 100, 1),
            (100, 101, 99, 100, 2),      # exit decided: a sell waits for the next open
            (90, 91, 89, 90, 0),         # the stop fills at the open first
            (90, 91, 89, 90, 0)]
    engine, _, fills = _run(rows, stops=Stops(sl=0.05))
    assert fills == [("2024-01-02", "buy", _d(100), _d(100)), ("2024-01-03", "sell", _d(100), _d(90))]
    signal_exits = [o for o in engine.orders.orders.values()
                    if o.order_type == "market" and o.side == "sell"]
    assert [o.state for o in signal_exits] == [OrderState.CANCELLED]
    assert engine.portfolio.position("X") == 0


def test_with_close_fills_a_stop_drops_the_bars_own_signal() -> None:
    rows = [(100, 101, 99, 100, 1),      # bought at this close
            (99, 100, 94, 96, 1),        # stop 95 fills; this bar's entry signal is dropped
            (96, 97, 95, 96, 0)]
    ex = Execution(cash=10_000.0, fees=0.0, fill="close")
    _, _, fills = _run(rows, execution=ex, stops=Stops(sl=0.05))
    assert fills == [("2024-01-01", "buy", _d(100), _d(100)), ("2024-01-02", "sell", _d(100), _d(95))]


def test_a_short_stop_buys_back_above_and_a_gap_fills_at_the_open() -> None:
    rows = [(100, 101, 99, 100, 1),      # short entry decided (direction short)
            (100, 101, 99, 100, 0),      # sold 100 at 100: the stop is 105 above
            (110, 111, 108, 109, 0),     # gaps over it: bought back at the open
            (109, 110, 108, 109, 0)]
    _, result, fills = _run(rows, direction="short", stops=Stops(sl=0.05))
    assert fills == [("2024-01-02", "sell", _d(100), _d(100)), ("2024-01-03", "buy", _d(100), _d(110))]
    assert result.equity == Decimal(9_000)


def test_time_stop_exits_at_the_close_of_the_bar_it_is_due() -> None:
    rows = [(100, 101, 99, 100, 1), (100, 101, 99, 100, 0),   # bought at bar 1's open
            (100, 101, 99, 100, 0),      # held 1 bar
            (100, 101, 99, 100, 0),      # held 2 bars: exit decided at this close
            (103, 104, 102, 103, 0), (103, 104, 102, 103, 0)]
    _, _, fills = _run(rows, stops=Stops(time_bars=2))
    assert fills[-1] == ("2024-01-05", "sell", _d(100), _d(103))


def test_short_entries_and_covers_from_a_strategys_short_flags() -> None:
    rows = [(100, 101, 99, 100, 3), (100, 101, 99, 100, 0),   # short 100 at 100
            (80, 81, 79, 80, 4),          # cover decided
            (80, 81, 79, 80, 0), (80, 81, 79, 80, 0)]
    _, result, fills = _run(rows, strategy=ScriptedLS(), direction="both")
    assert fills == [("2024-01-02", "sell", _d(100), _d(100)), ("2024-01-04", "buy", _d(100), _d(80))]
    assert result.equity == Decimal(12_000)


def test_the_kill_switch_flatten_buys_a_short_back() -> None:
    rows = [(100, 101, 99, 100, 1)] + [(100, 101, 99, 100, 0)] * 5

    def halt(bar) -> None:
        if engine_box and engine_box[0].bars == 3:
            eng = engine_box[0]
            eng.kill_switch.engage(FLATTEN_MARK + "test", by="test")
            eng.flatten()

    engine_box: list = []
    bars = _bars(rows)
    engine = assemble_engine([(Scripted(), "X")], ReplayFeed(bars, "X"), EX,
                             config=EngineConfig(direction="short"))
    engine_box.append(engine)
    result = engine.run(on_bar=halt)
    sides = [(f.side, f.quantity) for f in result.fills]
    assert sides == [("sell", Decimal(100)), ("buy", Decimal(100))]
    closing = engine.orders.orders[result.fills[-1].client_order_id]
    assert closing.strategy == FLATTEN and engine.portfolio.position("X") == 0


@pytest.mark.parametrize(("position", "flags", "opposite", "action"), [
    (0, (True, False, False, False), "close", Action.OPEN_LONG),
    (0, (False, False, True, False), "close", Action.OPEN_SHORT),
    (0, (True, False, True, False), "reverse", Action.NONE),          # direction conflict
    (1, (True, True, False, False), "close", Action.NONE),            # entry + exit cancel
    (1, (False, False, True, False), "close", Action.CLOSE_LONG),
    (1, (False, False, True, False), "reverse", Action.REVERSE_TO_SHORT),
    (1, (False, False, True, False), "ignore", Action.NONE),
    (-1, (True, False, False, False), "reverse", Action.REVERSE_TO_LONG),
    (-1, (False, False, False, True), "close", Action.CLOSE_SHORT),
    (-1, (False, False, True, False), "close", Action.NONE),           # no adding
])
def test_decide_follows_vectorbts_signal_pipeline(position, flags, opposite, action) -> None:
    assert decide(position, *flags, opposite=opposite) is action


def test_side_flags_map_entries_and_exits_by_direction() -> None:
    assert side_flags("long", True, True, None, None) == (True, True, False, False)
    assert side_flags("short", True, True, None, None) == (False, False, True, True)
    assert side_flags("both", True, True, None, None) == (True, False, True, False)
    assert side_flags("long", True, False, True, True) == (True, False, False, False)
    assert side_flags("both", True, False, True, False) == (True, False, True, False)
