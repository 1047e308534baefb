"""The Alpaca simulator speaks Alpaca's trading API: the unmodified alpaca-py clients drive it.

Bars are Oracle's daily bars of January-March 2014 (``tests/fixtures``). Events are
awaited with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    GetCalendarRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
)
from alpaca.trading.stream import TradingStream

from tradelab.brokers.sim.alpaca_harness import AlpacaSimHandle as SimHandle
from tradelab.brokers.sim.alpaca_harness import start_alpaca_sim

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "orcl-2014-yahoo.csv"
KEY, SECRET = "PKTESTKEY", "test-secret"


def orcl_bars() -> dict[str, pd.DataFrame]:
    """ORCL daily bars (real, 42 sessions) in the bar contract."""
    df = pd.read_csv(FIXTURE, parse_dates=["Date"], index_col="Date")
    df = df.rename(columns=str.lower)[["open", "high", "low", "close", "volume"]].astype(float)
    df.index = pd.DatetimeIndex(df.index, name="time").tz_localize("UTC")
    return {"ORCL": df}


def wait_until(pred: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``pred`` until truthy (its value) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture()
def sim() -> Iterator[SimHandle]:
    handle = start_alpaca_sim(orcl_bars(), key=KEY, secret=SECRET)
    yield handle
    handle.close()


def client(handle: SimHandle, secret: str = SECRET) -> TradingClient:
    return TradingClient(KEY, secret, paper=True, url_override=handle.rest_url)


def market(cid: str, qty: float, side: OrderSide = OrderSide.BUY,
           tif: TimeInForce = TimeInForce.DAY) -> MarketOrderRequest:
    return MarketOrderRequest(symbol="ORCL", qty=qty, side=side, time_in_force=tif, client_order_id=cid)


class Listener:
    """A real ``TradingStream`` in a thread, collecting ``trade_updates``."""

    def __init__(self, handle: SimHandle, secret: str = SECRET) -> None:
        self.updates: list[Any] = []
        self.stream = TradingStream(KEY, secret, paper=True, url_override=handle.ws_url)

        async def on_update(update: Any) -> None:
            self.updates.append(update)
        self.stream.subscribe_trade_updates(on_update)
        self.thread = threading.Thread(target=self.stream.run, daemon=True)
        self.thread.start()

    def events(self, cid: str) -> list[str]:
        return [event(u) for u in list(self.updates) if u.order.client_order_id == cid]

    def close(self) -> None:
        wait_until(lambda: self.stream._loop is not None, 10, "the stream loop")
        self.stream.stop()
        loop = self.stream._loop
        if loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(self.stream.close(), loop)
        self.thread.join(15)


def event(update: Any) -> str:
    """A ``TradeUpdate``'s event name (alpaca-py types it ``TradeEvent | str``)."""
    return str(getattr(update.event, "value", update.event))


def listening(handle: SimHandle, n: int = 1) -> bool:
    sim = handle.sim
    return sim is not None and len(sim.stream.clients) >= n


def test_wrong_key_gets_alpacas_401(sim: SimHandle) -> None:
    with pytest.raises(APIError) as err:
        client(sim, secret="wrong").get_account()
    assert err.value.status_code == 401
    assert err.value.code == 40110000 and err.value.message == "request is not authorized"


def test_account_asset_clock_and_calendar_follow_the_replayed_bars(sim: SimHandle) -> None:
    c = client(sim)
    account = c.get_account()
    assert Decimal(account.cash) == 100_000 and account.currency == "USD"
    asset = c.get_asset("ORCL")
    assert asset.fractionable and asset.tradable and asset.price_increment == 0.01
    clock = c.get_clock()  # daily bars: between sessions, the 2014-01-03 open is next
    assert not clock.is_open and clock.next_open.date() == date(2014, 1, 3)
    days = c.get_calendar(GetCalendarRequest(start=date(2014, 1, 1), end=date(2014, 1, 10)))
    assert [d.date.day for d in days] == [2, 3, 6, 7, 8, 9, 10]  # no New Year's Day, no weekend
    with pytest.raises(APIError) as err:
        c.get_asset("NOPE")
    assert err.value.status_code == 404


def test_round_trip_with_fractional_quantity_and_stream_events(sim: SimHandle) -> None:
    c, listener = client(sim), Listener(sim)
    try:
        wait_until(lambda: listening(sim), 20, "the stream to listen")
        placed = c.submit_order(market("buy-1", 2.5))
        assert placed.status == OrderStatus.NEW and placed.client_order_id == "buy-1"
        sim.advance(1)  # fills at the next bar's open
        wait_until(lambda: "fill" in listener.events("buy-1"), 20, "the fill event")
        fill = next(u for u in listener.updates if event(u) == "fill")
        assert fill.qty == 2.5 and fill.position_qty == 2.5 and fill.execution_id is not None
        assert fill.price == 37.65  # ORCL's open on 2014-01-03
        position = c.get_open_position("ORCL")
        assert Decimal(position.qty) == Decimal("2.5")
        c.submit_order(market("sell-1", 2.5, OrderSide.SELL))
        sim.advance(1)
        wait_until(lambda: "fill" in listener.events("sell-1"), 20, "the sell fill")
        assert c.get_all_positions() == []
        assert listener.events("buy-1") == ["new", "fill"]
        account = c.get_account()
        expected = Decimal(100_000) + Decimal("2.5") * (Decimal(str(fill_price(c, "sell-1"))) -
                                                      Decimal("37.65"))
        assert Decimal(account.cash) == expected
    finally:
        listener.close()


def fill_price(c: TradingClient, cid: str) -> float:
    return float(c.get_order_by_client_id(cid).filled_avg_price)


def test_refusals_use_alpacas_codes(sim: SimHandle) -> None:
    c = client(sim)
    c.submit_order(market("dup", 1))
    with pytest.raises(APIError) as err:
        c.submit_order(market("dup", 1))
    assert (err.value.status_code, err.value.code) == (422, 40010001)
    assert err.value.message == "client_order_id must be unique"
    with pytest.raises(APIError) as err:
        c.submit_order(market("rich", 10_000))  # ~$377k with $100k
    assert (err.value.status_code, err.value.code, err.value.message) == (
        403, 40310000, "insufficient buying power")
    with pytest.raises(APIError) as err:
        c.submit_order(market("tiny", 0.01))  # $0.38: under Alpaca's $1 for a fractional order
    assert (err.value.status_code, err.value.code) == (403, 40310000)
    with pytest.raises(APIError) as err:
        c.submit_order(market("frac-gtc", 0.5, tif=TimeInForce.GTC))
    assert err.value.code == 42210000
    with pytest.raises(APIError) as err:
        c.submit_order(market("short", 5, OrderSide.SELL))
    assert err.value.status_code == 403 and "insufficient qty" in err.value.message
    with pytest.raises(APIError) as err:
        c.get_order_by_client_id("never-sent")
    assert err.value.status_code == 404


def test_limit_order_rests_then_cancel_by_id_and_cancel_all(sim: SimHandle) -> None:
    c = client(sim)
    far = LimitOrderRequest(symbol="ORCL", qty=3, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
                            limit_price=20.0, client_order_id="low-1")
    placed = c.submit_order(far)
    c.submit_order(LimitOrderRequest(symbol="ORCL", qty=1, side=OrderSide.BUY,
                                     time_in_force=TimeInForce.GTC, limit_price=21.0,
                                     client_order_id="low-2"))
    sim.advance(2)
    opened = c.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))
    assert {o.client_order_id for o in opened} == {"low-1", "low-2"}
    c.cancel_order_by_id(placed.id)
    assert c.get_order_by_id(placed.id).status == OrderStatus.CANCELED
    with pytest.raises(APIError) as err:
        c.cancel_order_by_id(placed.id)
    assert err.value.status_code == 422
    cancelled = c.cancel_orders()
    assert [r.status for r in cancelled] == [200]
    assert c.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN)) == []
    assert len(c.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))) == 2


def test_day_order_expires_after_its_session(sim: SimHandle) -> None:
    c = client(sim)
    c.submit_order(LimitOrderRequest(symbol="ORCL", qty=1, side=OrderSide.BUY,
                                     time_in_force=TimeInForce.DAY, limit_price=20.0,
                                     client_order_id="day-1"))
    sim.advance(1)
    assert c.get_order_by_client_id("day-1").status == OrderStatus.EXPIRED


def test_dropped_ack_leaves_the_order_at_the_venue(sim: SimHandle) -> None:
    c = client(sim)
    sim.inject("drop_ack=once")
    with pytest.raises(requests.ConnectionError):
        c.submit_order(market("lost-1", 1))
    found = c.get_order_by_client_id("lost-1")
    assert found.status == OrderStatus.NEW
    assert len(c.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))) == 1


def test_stream_rejects_a_wrong_secret_with_alpacas_message(sim: SimHandle) -> None:
    import websockets.sync.client as ws_client

    with ws_client.connect(sim.ws_url) as ws:
        ws.send(json.dumps({"action": "authenticate", "data": {"key_id": KEY, "secret_key": "x"}}))
        reply = json.loads(ws.recv(timeout=20))
    assert reply == {"stream": "authorization",
                     "data": {"action": "authenticate", "status": "unauthorized"}}


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "child-process"])
def test_restart_keeps_orders_positions_and_cash(tmp_path: Path, in_process: bool) -> None:
    handle = start_alpaca_sim(orcl_bars(), key=KEY, secret=SECRET, in_process=in_process,
                              state_path=tmp_path / "alpaca.json")
    try:
        c = client(handle)
        c.submit_order(market("keep-1", 1.25))
        handle.advance(1)
        c.submit_order(LimitOrderRequest(symbol="ORCL", qty=1, side=OrderSide.BUY,
                                         time_in_force=TimeInForce.GTC, limit_price=20.0,
                                         client_order_id="keep-2"))
        cash = c.get_account().cash
        port = handle.port
        handle.restart()
        assert handle.port == port and handle.restarts == 1
        c = client(handle)
        assert Decimal(c.get_open_position("ORCL").qty) == Decimal("1.25")
        assert c.get_account().cash == cash
        assert c.get_order_by_client_id("keep-2").status == OrderStatus.NEW
        with pytest.raises(APIError):
            c.submit_order(market("keep-1", 1))  # client ids stay unique across the restart
        c.submit_order(market("after-1", 1))
        handle.advance(1)
        assert Decimal(c.get_open_position("ORCL").qty) == Decimal("2.25")
    finally:
        handle.close()


def test_restart_after_fault_restarts_the_child_by_itself(tmp_path: Path) -> None:
    handle = start_alpaca_sim(orcl_bars(), key=KEY, secret=SECRET, in_process=False,
                              faults="restart_after=1", state_path=tmp_path / "alpaca.json")
    try:
        c = client(handle)
        c.submit_order(market("r-1", 1))
        wait_until(lambda: handle.restarts == 1, 60, "the simulator to restart")

        def answers() -> Any:
            try:
                return c.get_order_by_client_id("r-1")
            except requests.ConnectionError:
                return None
        assert wait_until(answers, 60, "the restarted simulator").status == OrderStatus.NEW
    finally:
        handle.close()


def test_bar_seconds_replays_on_the_wall_clock_and_a_rate_limit_answers_429(tmp_path: Path) -> None:
    handle = start_alpaca_sim(orcl_bars(), key=KEY, secret=SECRET, bar_seconds=0.05, rate_limit=3,
                              balances={"USD": 5_000}, state_path=tmp_path / "s.json")
    try:
        wait_until(lambda: handle.status()["cursor"] >= 3, 30, "three bars replayed")
        headers = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
        answers = [requests.get(handle.rest_url + "/v2/account", headers=headers, timeout=10)
                   for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert answers[0].json()["cash"] == "5000"
        assert answers[3].json() == {"code": 42910000, "message": "too many requests"}
    finally:
        handle.close()


def test_cli_serves_the_shipped_sample_as_alpaca(tmp_path: Path) -> None:
    """``tradelab venue-sim alpaca`` with no symbol replays the sample S&P 500 as ``SPX``."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "from tradelab.cli import main; main()",
                             "venue-sim", "alpaca", "--key", KEY, "--secret", SECRET,
                             "--state", str(tmp_path / "s.json")],
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[3])
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until READY (or EOF if it failed)
        assert line.startswith("READY http://127.0.0.1:"), line
        url = line.split()[1]
        c = TradingClient(KEY, SECRET, paper=True, url_override=url)
        assert c.get_asset("SPX").symbol == "SPX"
        assert c.get_clock().timestamp.year == 1999
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_notional_order_buys_that_many_dollars_of_shares(sim: SimHandle) -> None:
    c = client(sim)
    placed = c.submit_order(MarketOrderRequest(symbol="ORCL", notional=100, side=OrderSide.BUY,
                                               time_in_force=TimeInForce.DAY, client_order_id="usd-100"))
    assert placed.notional == "100" and Decimal(str(placed.qty)) == Decimal("2.642706131")  # $100 / 37.84
    sim.advance(1)
    filled = c.get_order_by_client_id("usd-100")
    assert filled.status == OrderStatus.FILLED
    assert Decimal(c.get_open_position("ORCL").qty) == Decimal("2.642706131")
