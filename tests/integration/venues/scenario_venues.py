"""Test-side adapters giving the paper broker and both simulators the same verbs.

The scenario suite (``test_scenarios.py``) is written once against :class:`ScenarioVenue`:
``broker``, ``next_bar(book)``, ``inject(fault)``, ``drop_stream()``,
``place_foreign(cid)``, ``venue_orders()``, ``venue_position()``, ``reopen()``.
Prices are real (the sample's SPX daily bars of 2018); volumes are scaled by
``VOLUME_FRACTION`` at every venue so an order of 1 unit fills on one bar and a
limit order of 20 only partly. Waits have deadlines; nothing sleeps a fixed time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pandas as pd

from tradelab.bus import EventBus
from tradelab.clock import SimClock
from tradelab.events import Event
from tradelab.orders.manager import OrderManager
from tradelab.orders.model import Order
from tradelab.portfolio import Portfolio
from tradelab.testing import book_fills

KEY, SECRET = "scenario-key-0123", "scenario-secret-4567"
#: 1e-9 of SPX's ~2.5-6e9 daily volume: 2-6 units per bar at every venue.
VOLUME_FRACTION = 1e-9
START = 20          # bars before this one are history (the sims serve them as klines)
CASH = Decimal(100_000)
DEADLINE = 30.0


def spx_bars(n: int = 80) -> pd.DataFrame:
    """Real SPX daily bars (the bundled sample), from 2018-01-02."""
    from tradelab.data.sample import SampleSource

    frame = SampleSource().load("SPX")
    return frame.loc["2018-01-01":].iloc[:n].copy()


def wait_until(pred: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    """Poll ``pred`` until truthy (returned) or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


# -- the engine's side: order book, portfolio, bus -----------------------------------------
@dataclass
class Book:
    orders: OrderManager
    portfolio: Portfolio
    bus: EventBus
    events: list[Event] = field(default_factory=list)

    def kinds(self) -> list[str]:
        return [type(e).__name__ for e in self.events]


def make_book(broker: Any, clock: SimClock) -> Book:
    """The engine's parts around ``broker``: fills reach the portfolio through the bus,
    as the engine's booking step applies them (what the Reconciler relies on)."""
    bus = EventBus()
    book = Book(OrderManager(broker, bus, clock, attempts=5, max_wait=0.2),
                Portfolio(CASH, "acc"), bus)

    book_fills(bus, book.portfolio)
    bus.subscribe(Event, book.events.append)
    return book


def _markets_settled(book: Book) -> bool:
    """Default end of a bar: no market order of the book is still open."""
    return not any(o.is_open and o.order_type == "market" for o in book.orders.orders.values())


# -- the venues ---------------------------------------------------------------------------
class ScenarioVenue:
    """One venue as the scenarios see it (see the module doc)."""

    name: str
    symbol: str
    #: What this venue has (faults it can inject, rules it applies); a scenario
    #: needing something else is not generated for it.
    faults: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.bars = spx_bars()
        self.index = START
        self.clock = SimClock(self.now)
        self.broker: Any = None

    @property
    def now(self) -> Any:
        """The time of the latest closed bar (orders are decided on it)."""
        return self.bars.index[self.index].to_pydatetime()

    @property
    def price(self) -> Decimal:
        return Decimal(str(round(float(self.bars["close"].iloc[self.index]), 2)))

    def order(self, cid: str, side: str, qty: str, kind: str = "market",
              price: Decimal | None = None) -> Order:
        return Order(cid, "acc", "scenario", self.symbol, side, Decimal(qty), self.now,
                     order_type=kind, limit_price=price if kind == "limit" else None,
                     reference_price=self.price)

    def pump(self, book: Book) -> list[Any]:
        """Apply what the venue reported since the last call."""
        reports = self.broker.poll()
        book.orders.apply_reports(reports)
        return reports

    def next_bar(self, book: Book, until: Callable[[], bool] | None = None) -> list[Any]:
        raise NotImplementedError

    def inject(self, spec: str) -> None:
        raise NotImplementedError(f"{self.name} has no fault {spec!r}")

    def close(self) -> None:
        pass


class PaperVenue(ScenarioVenue):
    """The paper broker, worked by ``on_bar`` at each bar's open and close."""

    name, symbol = "paper", "SPX"
    # A lost reply is a FlakyBroker around it; no stream, no rate limit, no lot/notional rules
    faults = frozenset({"drop_ack"})

    def __init__(self) -> None:
        super().__init__()
        from tradelab.execution import Execution
        from tradelab.orders.brokers.paper import PaperBroker

        self.broker = PaperBroker(Execution(cash=float(CASH), fees=0.001), cash=CASH,
                                  volume_fraction=VOLUME_FRACTION)

    def next_bar(self, book: Book, until: Callable[[], bool] | None = None) -> list[Any]:
        self.index += 1
        at = self.now
        self.clock.advance(at)
        row = self.bars.iloc[self.index]
        bar = (float(row.open), float(row.high), float(row.low), float(row.close), float(row.volume))
        out = []
        for phase in ("open", "close"):
            updates = self.broker.on_bar(self.symbol, at, *bar, phase)
            for u in updates:
                book.orders.apply(u)
            out += updates
        return out

    def place_foreign(self, cid: str) -> None:
        # An order whose id is not ours, sent straight to the venue (no book knows it)
        self.broker.submit(self.order(cid, "buy", "1", "limit", (self.price / 2).quantize(Decimal("0.01"))))

    def venue_orders(self) -> list[str]:
        return list(self.broker._orders)  # every id the paper venue ever accepted

    def venue_position(self) -> Decimal:
        return self.broker.positions().get(self.symbol, Decimal(0))

    def reopen(self) -> Any:
        # The venue outlives the killed process: the same paper ledger answers the new one
        return self.broker


class SimVenue(ScenarioVenue):
    """A wire-protocol simulator on loopback, driven by its real client library."""

    faults = frozenset({"drop_ack", "http429", "disconnect", "min_notional"})
    cid_key = "clientOrderId"

    def __init__(self) -> None:
        super().__init__()
        self.sim = self._start_sim()
        self.broker = self._connect()

    def _start_sim(self) -> Any:
        raise NotImplementedError

    def _connect(self) -> Any:
        raise NotImplementedError

    def next_bar(self, book: Book, until: Callable[[], bool] | None = None) -> list[Any]:
        """Close the next bar at the venue, then book its reports until ``until`` holds."""
        self.index += 1
        self.clock.advance(self.now)
        self.sim.advance(1)
        seen: list[Any] = []
        done = until or (lambda: _markets_settled(book))

        def settled() -> bool:
            seen.extend(self.pump(book))
            return done()
        try:
            wait_until(settled, f"{self.name}: the bar's reports")
        except AssertionError as exc:  # say what the venue and the stream know
            raise AssertionError(f"{exc}; venue: {self.sim.orders()}; reconnects "
                                 f"{self.reconnects()}; booked {book.orders.orders}") from exc
        return seen

    def inject(self, spec: str) -> None:
        self.sim.inject(spec)

    def reconnects(self) -> int:
        raise NotImplementedError

    def venue_orders(self) -> list[str]:
        return [o[self.cid_key] for o in self.sim.orders()]

    def venue_position(self) -> Decimal:
        return self.broker.positions().get(self.symbol, Decimal(0))

    def reopen(self) -> Any:
        """A new process's client: the old one is gone (its stream with it)."""
        self.broker.close()
        self.broker = self._connect()
        return self.broker

    def close(self) -> None:
        self.broker.close()
        self.sim.close()


class BinanceVenue(SimVenue):
    name, symbol = "binance", "SPX/USDT"

    def _start_sim(self) -> Any:
        from tradelab.brokers.sim.harness import start_binance_sim

        return start_binance_sim({self.symbol: self.bars}, key=KEY, secret=SECRET, start=START,
                                 volume_fraction=VOLUME_FRACTION)

    def _connect(self) -> Any:
        from tradelab.brokers.ccxt_broker import CcxtBroker

        broker = CcxtBroker("binance", api_key=KEY, secret=SECRET, rest_url=self.sim.rest_url,
                            ws_url=self.sim.ws_url, symbols=[self.symbol], timeout=5.0, backoff=0.05)
        wait_until(broker.stream.connected.is_set, "the ccxt order stream")
        return broker

    def reconnects(self) -> int:
        return self.broker.stream.reconnects

    def place_foreign(self, cid: str) -> None:
        # The plain ccxt client (no tradelab code in the call), someone else's client id
        from tradelab.brokers.ccxt_broker import CcxtBroker

        raw = CcxtBroker("binance", api_key=KEY, secret=SECRET, rest_url=self.sim.rest_url,
                         stream=False).rest
        raw.create_order(self.symbol, "limit", "buy", 1.0, float(self.price / 2),
                         {"clientOrderId": cid})


class AlpacaVenue(SimVenue):
    name, symbol = "alpaca", "SPX"
    cid_key = "client_order_id"

    def _start_sim(self) -> Any:
        from tradelab.brokers.sim.alpaca_harness import start_alpaca_sim

        return start_alpaca_sim({self.symbol: self.bars.iloc[START:]}, key=KEY, secret=SECRET,
                                volume_fraction=VOLUME_FRACTION)

    def _connect(self) -> Any:
        from tradelab.brokers.alpaca_broker import AlpacaBroker

        broker = AlpacaBroker(api_key=KEY, secret=SECRET, rest_url=self.sim.rest_url,
                              ws_url=self.sim.ws_url, symbols=[self.symbol], timeout=5.0,
                              max_backoff=0.2)
        assert broker.wait_connected(DEADLINE), "the alpaca-py trade_updates stream"
        return broker

    def reconnects(self) -> int:
        return self.broker.reconnects

    def place_foreign(self, cid: str) -> None:
        # alpaca-py's own TradingClient, someone else's client id
        from alpaca.trading.client import TradingClient
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import LimitOrderRequest

        TradingClient(KEY, SECRET, paper=True, url_override=self.sim.rest_url).submit_order(
            LimitOrderRequest(symbol=self.symbol, qty=1, side=OrderSide.BUY,
                              time_in_force=TimeInForce.GTC, client_order_id=cid,
                              limit_price=float((self.price / 2).quantize(Decimal("0.01")))))


VENUES: dict[str, type[ScenarioVenue]] = {"paper": PaperVenue, "binance": BinanceVenue,
                                          "alpaca": AlpacaVenue}
