"""The Binance simulator driven by the unmodified ccxt 4.5.90 clients on loopback."""

from __future__ import annotations

import asyncio
import threading

import ccxt
import ccxt.pro
import pytest

from tests.integration.venues.binance_helpers import KEY, SECRET, SYMBOL, eth_bars, wait_for
from tradelab.brokers.ccxt_reports import override_urls
from tradelab.brokers.sim.harness import start_binance_sim


def _client(sim, secret: str = SECRET, pro: bool = False):
    mod = ccxt.pro if pro else ccxt
    ex = mod.binance({"apiKey": KEY, "secret": secret, "enableRateLimit": True, "timeout": 10_000})
    ex.urls["api"] = {k: (override_urls(v, sim.ws_url) if k == "ws" else override_urls(v, sim.rest_url))
                      for k, v in ex.urls["api"].items()}
    return ex


@pytest.fixture
def sim():
    handle = start_binance_sim(eth_bars(), key=KEY, secret=SECRET, start=20)
    yield handle
    handle.close()


def test_markets_filters_and_klines(sim) -> None:
    ex = _client(sim)
    markets = ex.load_markets()
    assert list(markets) == [SYMBOL]
    m = markets[SYMBOL]
    assert m["precision"] == {"amount": 0.0001, "price": 0.001, "base": 1e-08, "quote": 1e-08}
    assert m["limits"]["cost"]["min"] == 10.0 and not m["margin"]
    rows = ex.fetch_ohlcv(SYMBOL, "1m", limit=5)
    assert len(rows) == 5 and rows[-1][5] == 0.0  # the forming bar shows its open only
    sim.advance(1)
    assert ex.fetch_ohlcv(SYMBOL, "1m", limit=5)[-2][0] == rows[-1][0]


def test_bad_signature_and_unknown_key_get_binance_errors(sim) -> None:
    good = _client(sim)
    good.load_markets()
    bad = _client(sim, secret="not-the-secret")
    bad.markets, bad.markets_by_id = good.markets, good.markets_by_id
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        bad.fetch_balance()
    bad.apiKey = "someone-else"
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        bad.fetch_balance()


def test_order_lifecycle_errors_and_trades(sim) -> None:
    ex = _client(sim)
    ex.load_markets()
    placed = ex.create_order(SYMBOL, "market", "buy", 0.5, None, {"clientOrderId": "t-1"})
    assert placed["clientOrderId"] == "t-1" and placed["status"] == "open"
    sim.advance(1)
    got = ex.fetch_order(None, SYMBOL, {"origClientOrderId": "t-1"})
    assert got["status"] == "closed" and got["filled"] == 0.5
    trades = ex.fetch_my_trades(SYMBOL)
    assert [t["order"] for t in trades] == [placed["id"]] and trades[0]["fee"]["currency"] == "USDT"
    assert ex.fetch_balance()["ETH"]["total"] == 0.5
    with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):
        ex.create_order(SYMBOL, "market", "buy", 0.001, None, {"clientOrderId": "t-2"})
    ex.create_order(SYMBOL, "limit", "buy", 0.5, 1500, {"clientOrderId": "t-3"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        ex.create_order(SYMBOL, "limit", "buy", 0.5, 1500, {"clientOrderId": "t-3"})
    assert [o["clientOrderId"] for o in ex.fetch_open_orders(SYMBOL)] == ["t-3"]
    ex.cancel_order(None, SYMBOL, {"origClientOrderId": "t-3"})
    with pytest.raises(ccxt.OrderNotFound, match="-2011"):
        ex.cancel_order(None, SYMBOL, {"origClientOrderId": "t-3"})
    with pytest.raises(ccxt.OrderNotFound, match="-2013"):
        ex.fetch_order(None, SYMBOL, {"origClientOrderId": "never"})
    with pytest.raises(ccxt.BadRequest, match="-1100"):
        ex.create_order(SYMBOL, "market", "buy", 0.5, None, {"clientOrderId": "x" * 37})
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order(SYMBOL, "market", "sell", 5, None, {"clientOrderId": "t-4"})


def test_faults_429_5xx_and_dropped_ack(sim) -> None:
    ex = _client(sim)
    ex.load_markets()
    sim.inject("http429=1,retry_after=0.2")
    with pytest.raises(ccxt.DDoSProtection):
        ex.fetch_balance()
    assert ex.last_response_headers["Retry-After"] == "0.2"
    sim.inject("http5xx=1")
    with pytest.raises(ccxt.OperationFailed):
        ex.fetch_balance()
    sim.inject("drop_ack=once")
    with pytest.raises(ccxt.NetworkError):
        ex.create_order(SYMBOL, "market", "buy", 0.5, None, {"clientOrderId": "lost-1"})
    assert [o["clientOrderId"] for o in sim.orders()] == ["lost-1"]  # accepted all the same
    assert sim.fired() == {"http429": 1, "http5xx": 1, "drop_ack": 1}
    sim.inject("delay_fill=2")
    ex.create_order(SYMBOL, "market", "buy", 0.5, None, {"clientOrderId": "late-1"})
    sim.advance(2)
    assert ex.fetch_order(None, SYMBOL, {"origClientOrderId": "late-1"})["status"] == "open"
    sim.advance(1)
    assert ex.fetch_order(None, SYMBOL, {"origClientOrderId": "late-1"})["status"] == "closed"


def test_order_rate_limit_answers_429_with_binance_code() -> None:
    handle = start_binance_sim(eth_bars(), key=KEY, secret=SECRET, start=20, order_limit=2)
    try:
        ex = _client(handle)
        ex.load_markets()
        for i in range(2):
            ex.create_order(SYMBOL, "limit", "buy", 0.5, 1500, {"clientOrderId": f"rl-{i}"})
        with pytest.raises(ccxt.DDoSProtection, match="-1015"):
            ex.create_order(SYMBOL, "limit", "buy", 0.5, 1500, {"clientOrderId": "rl-2"})
    finally:
        handle.close()


def test_user_data_and_kline_streams_over_ccxt_pro(sim) -> None:
    async def run():
        ex = _client(sim, pro=True)
        try:
            await ex.load_markets()
            watch = asyncio.ensure_future(ex.watch_orders())
            candles = asyncio.ensure_future(ex.watch_ohlcv(SYMBOL, "1m"))
            await asyncio.wait_for(ex.authenticate({"type": "spot"}), 10)
            await ex.create_order(SYMBOL, "market", "buy", 0.5, None, {"clientOrderId": "ws-1"})
            first = await asyncio.wait_for(watch, 10)
            assert first[-1]["clientOrderId"] == "ws-1" and first[-1]["info"]["x"] == "NEW"
            nxt = asyncio.ensure_future(ex.watch_orders())
            await asyncio.sleep(0)  # its future is registered before the fill is pushed
            await asyncio.get_running_loop().run_in_executor(None, sim.advance, 1)
            filled = await asyncio.wait_for(nxt, 10)
            assert filled[-1]["info"]["X"] == "FILLED" and filled[-1]["info"]["z"] == "0.50000000"
            assert await asyncio.wait_for(candles, 10)
        finally:
            await ex.close()
    asyncio.run(run())


def test_ccxt_feed_takes_its_bars_from_the_simulator(sim) -> None:
    from tradelab.brokers.ccxt_broker import loopback_urls
    from tradelab.feeds.ccxt_feed import CcxtFeed

    frame = eth_bars()[SYMBOL]
    rest, ws = loopback_urls("binance", sim.rest_url, sim.ws_url)
    feed = CcxtFeed("binance", SYMBOL, interval="1m", mode="websocket", urls=rest, ws_urls=ws,
                    start_after=frame.index[20], end=frame.index[23])
    got: list = []
    thread = threading.Thread(target=lambda: [got.append(b) for b in feed], daemon=True)
    thread.start()
    wait_for(lambda: sim.status()["kline_streams"] >= 1)
    for _ in range(3):
        sim.advance(1)
    thread.join(30)
    assert [b.time for b in got] == list(frame.index[21:24])
    assert [b.close for b in got] == list(frame["close"].iloc[21:24])


def test_state_survives_a_restart(sim) -> None:
    ex = _client(sim)
    ex.load_markets()
    ex.create_order(SYMBOL, "limit", "buy", 0.5, 1500, {"clientOrderId": "keep-1"})
    before = sim.status()
    sim.restart()
    assert sim.status()["cursor"] == before["cursor"]
    assert ex.fetch_order(None, SYMBOL, {"origClientOrderId": "keep-1"})["status"] == "open"
    assert ex.fetch_balance()["USDT"]["used"] > 0


def test_in_process_restart_fault_keeps_state() -> None:
    handle = start_binance_sim(eth_bars(), key=KEY, secret=SECRET, start=20, faults="restart_after=1")
    try:
        ex = _client(handle)
        ex.load_markets()
        ex.create_order(SYMBOL, "limit", "buy", 0.5, 1500, {"clientOrderId": "ip-1"})
        wait_for(lambda: handle.restarts == 1)
        got = wait_for(lambda: _try(lambda: ex.fetch_order(None, SYMBOL, {"origClientOrderId": "ip-1"})))
        assert got["status"] == "open" and handle.fired() == {}  # a fresh process-like start
    finally:
        handle.close()


def test_subprocess_simulator_restarts_itself_with_state(tmp_path) -> None:
    handle = start_binance_sim(eth_bars(), key=KEY, secret=SECRET, start=20, in_process=False,
                               state_path=tmp_path / "state.json", faults="restart_after=1")
    try:
        ex = _client(handle)
        ex.load_markets()
        ex.create_order(SYMBOL, "limit", "buy", 0.5, 1500, {"clientOrderId": "proc-1"})
        wait_for(lambda: handle.restarts == 1, timeout=60)
        got = wait_for(lambda: _try(lambda: ex.fetch_order(None, SYMBOL, {"origClientOrderId": "proc-1"})),
                       timeout=60)
        assert got["status"] == "open"
        assert handle.advance(1)["cursor"] == 21
    finally:
        handle.close()


def _try(fn):
    try:
        return fn()
    except ccxt.NetworkError:
        return None
