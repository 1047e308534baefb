"""The venue simulators' matching engine: next-open fills, limits, stops, volume caps, balances."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from tradelab.brokers.sim import state
from tradelab.brokers.sim.core import Market, VenueBook, VenueError

D = Decimal
MARKET = Market("BTCUSDT", "BTC/USDT", "BTC", "USDT", D("0.001"), D("0.01"), D("0.001"), D("1000"), D("10"))


def _bars() -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=6, freq="1min", tz="UTC")
    return pd.DataFrame({"open": [100.0, 101, 102, 98, 110, 111], "high": [101.0, 103, 103, 99, 112, 112],
                         "low": [99.0, 100, 97, 95, 109, 110], "close": [101.0, 102, 98, 99, 111, 111],
                         "volume": [10.0, 10, 10, 10, 10, 10]}, index=idx)


def _book(**kw) -> tuple[VenueBook, list]:
    book = VenueBook([MARKET], {"BTCUSDT": _bars()}, balances={"USDT": D(10_000)}, fee_rate=D("0.001"), **kw)
    events: list = []
    book.subscribers.append(events.append)
    return book, events


def test_market_order_fills_at_next_open_with_fee_in_quote() -> None:
    book, events = _book()
    order = book.place("BTC/USDT", "buy", "market", D("2"), client_id="c1")
    assert order.status == "NEW" and order.filled == 0
    book.advance()
    assert order.status == "FILLED" and order.trades[0].price == D("101")
    assert book.balance("BTC") == (D(2), D(0))
    assert book.balance("USDT")[0] == D(10_000) - D(202) - D("0.202")
    assert [e.kind for e in events] == ["new", "trade"]
    assert [e.seq for e in events] == [1, 2]


def test_limit_gap_fills_at_open_and_stop_triggers_on_range() -> None:
    book, _ = _book()
    limit = book.place("BTCUSDT", "buy", "limit", D(1), price=D("99.5"))
    book.advance(2)  # bar 1 low 100: no; bar 2 low 97 → fills at the limit
    assert limit.status == "FILLED" and limit.trades[0].price == D("99.5")
    stop = book.place("BTCUSDT", "buy", "stop", D(1), stop_price=D("105"))
    book.advance()  # bar 3 high 99: not triggered
    assert stop.status == "NEW"
    book.advance()  # bar 4 gaps open 110 over the stop → fills at the open
    assert stop.trades[0].price == D(110)


def test_volume_fraction_partial_fill_then_cancel_releases_the_rest() -> None:
    book, events = _book(volume_fraction=0.1)
    order = book.place("BTCUSDT", "buy", "limit", D(3), price=D(105), client_id="p1")
    locked = book.balance("USDT")[1]
    assert locked == D(3) * D(105) * D("1.001")
    book.advance()
    assert order.status == "PARTIALLY_FILLED" and order.filled == D(1)
    book.cancel(client_id="p1")
    assert order.status == "CANCELED" and book.balance("USDT")[1] == 0
    assert [e.kind for e in events] == ["new", "trade", "canceled"]
    with pytest.raises(VenueError) as err:
        book.cancel(client_id="p1")
    assert err.value.code == "unknown_order"


@pytest.mark.parametrize(("kw", "code"), [
    ({"quantity": D("0.0005")}, "lot_size"), ({"quantity": D("0.0015")}, "lot_size"),
    ({"quantity": D("0.05")}, "min_notional"), ({"quantity": D(1000)}, "insufficient_balance"),
])
def test_rejections_carry_a_neutral_code(kw, code) -> None:
    book, events = _book()
    with pytest.raises(VenueError) as err:
        book.place("BTCUSDT", "buy", "market", kw["quantity"])
    assert err.value.code == code and not events


def test_off_tick_price_and_duplicate_open_client_id() -> None:
    book, _ = _book()
    with pytest.raises(VenueError, match="PRICE_FILTER"):
        book.place("BTCUSDT", "buy", "limit", D(1), price=D("99.001"))
    book.place("BTCUSDT", "buy", "limit", D(1), price=D(50), client_id="x")
    with pytest.raises(VenueError) as err:
        book.place("BTCUSDT", "buy", "limit", D(1), price=D(50), client_id="x")
    assert err.value.code == "duplicate_client_id"


def test_sell_needs_the_base_asset_and_ioc_expires() -> None:
    book, _ = _book()
    with pytest.raises(VenueError, match="insufficient"):
        book.place("BTCUSDT", "sell", "market", D(1))
    ioc = book.place("BTCUSDT", "buy", "limit", D(1), price=D(50), tif="IOC")
    book.advance()
    assert ioc.status == "EXPIRED" and book.balance("USDT") == (D(10_000), D(0))


def test_delayed_fill_and_state_round_trip(tmp_path) -> None:
    book, _ = _book()
    order = book.place("BTCUSDT", "buy", "market", D(1), client_id="d", hold_bars=2)
    book.advance(2)
    assert order.status == "NEW"
    path = tmp_path / "state.json"
    state.save(book, path)
    again, events = _book()
    assert state.load(again, path) and again.cursor == 2 and again.seq == book.seq
    again.advance()
    restored = again.find(client_id="d")
    assert restored.status == "FILLED" and restored.trades[0].price == D(98)
    assert events[0].seq == book.seq + 1
    assert again.place("BTCUSDT", "buy", "market", D(1)).venue_id == order.venue_id + 1
