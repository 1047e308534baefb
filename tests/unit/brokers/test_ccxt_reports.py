"""What ccxt says, mapped to tradelab's reports and rules (no network)."""

from __future__ import annotations

from decimal import Decimal

from ccxt.base.decimal_to_precision import DECIMAL_PLACES, TICK_SIZE

from tradelab.brokers.ccxt_reports import override_urls, rest_report, rules_from_market, stream_report
from tradelab.brokers.sim import binance_wire as wire
from tradelab.brokers.sim.core import Market, VenueBook

D = Decimal


def _book():
    import pandas as pd

    idx = pd.date_range("2024-01-01", periods=3, freq="1min", tz="UTC")
    bars = pd.DataFrame({"open": [100.0, 101, 102], "high": [101.0, 102, 103], "low": [99.0, 100, 101],
                         "close": [100.0, 101, 102], "volume": [1.0, 1, 1]}, index=idx)
    m = Market("ETHUSDT", "ETH/USDT", "ETH", "USDT", D("0.01"), D("0.01"), D("0.01"), D(1000), D(10))
    book = VenueBook([m], {"ETHUSDT": bars}, balances={"USDT": D(1000)}, volume_fraction=0.5)
    events: list = []
    book.subscribers.append(events.append)
    return book, events


def test_execution_reports_map_cumulative_average_last_fill_and_order() -> None:
    book, events = _book()
    book.place("ETHUSDT", "buy", "limit", D(1), price=D(105), client_id="c1")
    book.advance(2)  # 0.5 per bar
    reports = [stream_report({"info": wire.execution_report(e), "symbol": "ETH/USDT"}) for e in events]
    assert [r.status for r in reports] == ["accepted", "partially_filled", "filled"]
    second = reports[2]
    assert second.cum_quantity == D(1) and second.last_quantity == D("0.5")
    assert second.avg_price == D("101.5") and second.last_price == D(102) and second.trade_id == "2"
    assert second.fee == D("0.051") and second.client_order_id == "c1"
    assert [r.sequence for r in reports] == sorted(r.sequence for r in reports)


def test_a_cancel_report_carries_the_original_client_id() -> None:
    raw = {"e": "executionReport", "x": "CANCELED", "X": "CANCELED", "c": "cancel-req-9", "C": "ours-1",
           "i": 7, "S": "SELL", "q": "1", "z": "0", "Z": "0", "l": "0", "L": "0", "n": "0", "t": -1,
           "T": 1_700_000_000_000}
    r = stream_report({"info": raw, "symbol": "ETH/USDT"})
    assert r.client_order_id == "ours-1" and r.status == "cancelled" and r.trade_id == ""


def test_rest_report_sums_fees_and_values_a_base_asset_fee() -> None:
    order = {"id": "5", "clientOrderId": "c5", "symbol": "ETH/USDT", "side": "buy", "amount": 2.0,
             "filled": 2.0, "average": 100.5, "status": "closed", "timestamp": 1,
             "info": {"status": "FILLED"}}
    trades = [{"id": "1", "timestamp": 1, "amount": 1.0, "price": 100.0,
               "fee": {"cost": 0.001, "currency": "ETH"}},
              {"id": "2", "timestamp": 2, "amount": 1.0, "price": 101.0,
               "fee": {"cost": 0.1, "currency": "USDT"}}]
    r = rest_report(order, trades, {"base": "ETH", "quote": "USDT"})
    assert r.status == "filled" and r.cum_fee == D("0.2") and r.fee == D("0.1") and r.trade_id == "2"


def test_rules_from_tick_size_filters_and_from_decimal_places() -> None:
    binance = {"precision": {"amount": 1e-05, "price": 0.01}, "limits": {"cost": {"min": 5.0}},
               "info": {"filters": [{"filterType": "LOT_SIZE", "stepSize": "0.00001000",
                                     "minQty": "0.00001000", "maxQty": "9000.00000000"},
                                    {"filterType": "PRICE_FILTER", "tickSize": "0.01000000"},
                                    {"filterType": "NOTIONAL", "minNotional": "5.00000000"}]}}
    r = rules_from_market("BTC/USDT", binance, TICK_SIZE)
    assert (r.step, r.tick, r.min_notional, r.max_quantity) == (D("0.00001"), D("0.01"), D(5), D(9000))
    other = {"precision": {"amount": 3, "price": 2}, "limits": {"amount": {"min": 0.001}}}
    r = rules_from_market("X/Y", other, DECIMAL_PLACES)
    assert (r.step, r.tick, r.min_quantity, r.shortable) == (D("0.001"), D("0.01"), D("0.001"), False)


def test_override_urls_keeps_paths() -> None:
    urls = {"public": "https://api.binance.com/api/v3", "ws": {"ws-api": {"spot": "wss://x:443/ws-api/v3"}}}
    got = override_urls(urls, "http://127.0.0.1:9")
    assert got["public"] == "http://127.0.0.1:9/api/v3"
    assert got["ws"]["ws-api"]["spot"] == "http://127.0.0.1:9/ws-api/v3"
