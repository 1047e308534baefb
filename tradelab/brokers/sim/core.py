"""A venue-neutral matching engine that replays bars: the heart of every venue simulator.

:class:`VenueBook` holds the venue's markets, balances (free and locked per
asset), orders and trades. The wire layers (:mod:`tradelab.brokers.sim.binance`,
the Alpaca one) translate their venue's requests into calls on it, map
:class:`VenueError` codes to their own error bodies, and push the
:class:`ExecutionEvent` objects it emits to their streaming clients.

Time and matching
-----------------
Bars of every symbol are merged into one timeline; ``cursor`` is the index of
the latest *closed* bar (bars ``0..cursor`` are history that klines serve).
:meth:`VenueBook.advance` closes the next bar and matches the open orders
against it, so an order placed while bar ``t`` is the latest fills on bar
``t + 1`` (next-open, like research):

* market: at the bar's open;
* limit: when the bar's range trades through the limit, at the limit (a gap
  through it fills at the open, the better price);
* stop (stop-market): triggers when the range reaches the stop, fills at the
  stop (a gap through it at the open); the untriggered order rests.

``volume_fraction`` caps what one bar can fill per symbol (``volume_fraction ×
bar volume``, shared by that symbol's orders in arrival order; ``None`` = no
cap): what is left rests and keeps matching on the next bars (a market order
too — the simulator's simplification). ``IOC`` expires what one bar did not
fill, ``FOK`` fills entirely on one bar or expires.

Balances: a sell locks its base quantity, a limit (stop) buy locks quantity ×
limit (stop) × (1 + fee rate) of the quote asset; a market buy locks nothing
and is checked against the latest close when placed. At a fill the buyer pays
price × quantity + fee from quote, the seller receives price × quantity − fee:
fees are ``fee_rate`` of the notional, in the quote asset. A buy that can no
longer be paid for fills what it can afford and expires the rest.

The venue's "now" (order and event times) is the close of the latest bar, i.e.
the open time of the next bar; a trade carries the open time of the bar it
matched on; every event is stamped at least 1 ms after the previous one
(:meth:`VenueBook.stamp`). Sequence numbers of events increase monotonically and survive a
restart (:mod:`tradelab.brokers.sim.state`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import pandas as pd

from tradelab.brokers.sim.model import (
    D0,
    ERROR_CODES,
    ExecutionEvent,
    Market,
    Trade,
    VenueError,
    VenueOrder,
)


def _on_grid(x: Decimal, grid: Decimal) -> bool:
    return grid <= 0 or (x % grid) == 0


def _ns(ts: pd.Timestamp) -> int:
    return int(pd.Timestamp(ts).value)


class VenueBook:
    """Markets, balances, orders and trades of one simulated account, matched against bars.

    Parameters
    ----------
    markets
        The replayed markets (keyed by venue symbol).
    bars
        Venue symbol → DataFrame (``open, high, low, close, volume``, DatetimeIndex).
    balances
        Starting free balance per asset.
    fee_rate
        Fee as a fraction of the notional, charged in the quote asset.
    volume_fraction
        Share of a bar's volume that can fill (``None``: unlimited).
    start
        Index of the first "latest closed" bar (history before it is served as klines).
    """

    def __init__(self, markets: list[Market], bars: dict[str, pd.DataFrame], *,
                 balances: dict[str, Decimal] | None = None, fee_rate: Decimal = Decimal("0.001"),
                 volume_fraction: float | None = None, start: int = 0) -> None:
        self.markets = {m.symbol: m for m in markets}
        self.by_unified = {m.unified: m for m in markets}
        self.bars = {s: f.sort_index() for s, f in bars.items()}
        self.timeline = sorted({t for f in self.bars.values() for t in f.index})
        if not self.timeline:
            raise ValueError("no bars to replay")
        steps = pd.Series(self.timeline).diff().dropna()
        self.interval_ns = int(steps.min().value) if len(steps) else 60_000_000_000
        self.cursor = min(start, len(self.timeline) - 1)
        self.fee_rate, self.volume_fraction = fee_rate, volume_fraction
        self.free: dict[str, Decimal] = {a: Decimal(v) for a, v in (balances or {}).items()}
        self.locked: dict[str, Decimal] = {}
        self.orders: dict[int, VenueOrder] = {}
        self.next_order_id, self.next_trade_id, self.seq = 1, 1, 0
        self.last_ns = 0
        self.lock = threading.RLock()
        self.subscribers: list[Callable[[ExecutionEvent], None]] = []
        self.on_change: Callable[[], None] | None = None  # persistence hook

    # -- time ---------------------------------------------------------------------
    def now_ns(self) -> int:
        """The close of the latest bar (= the open time of the next one)."""
        return _ns(self.timeline[self.cursor]) + self.interval_ns

    def stamp(self, at_ns: int) -> int:
        """A venue time at or after ``at_ns``, 1 ms after the previous one: the venue's
        clock is the replayed bars' time, and its events never share a millisecond."""
        self.last_ns = max(at_ns, self.last_ns + 1_000_000)
        return self.last_ns

    @property
    def exhausted(self) -> bool:
        return self.cursor >= len(self.timeline) - 1

    def bar(self, symbol: str, index: int) -> pd.Series | None:
        """The bar of ``symbol`` at timeline position ``index`` (``None`` when it has none)."""
        frame = self.bars.get(symbol)
        if frame is None or not 0 <= index < len(self.timeline):
            return None
        at = self.timeline[index]
        return frame.loc[at] if at in frame.index else None

    def history(self, symbol: str) -> pd.DataFrame:
        """The closed bars of ``symbol`` (through the cursor)."""
        frame = self.bars[symbol]
        return frame.loc[frame.index <= self.timeline[self.cursor]]

    def last_price(self, symbol: str) -> Decimal:
        hist = self.history(symbol)
        return Decimal(repr(float(hist["close"].iloc[-1]))) if len(hist) else D0

    # -- queries ------------------------------------------------------------------
    def market(self, symbol: str) -> Market:
        m = self.markets.get(symbol) or self.by_unified.get(symbol)
        if m is None:
            raise VenueError("unknown_symbol", f"unknown symbol {symbol}")
        return m

    def find(self, symbol: str | None = None, *, venue_id: int | None = None,
             client_id: str | None = None) -> VenueOrder:
        """One order by venue id or client id (the latest with that client id)."""
        with self.lock:
            hits = [o for o in self.orders.values()
                    if (venue_id is None or o.venue_id == venue_id)
                    and (client_id is None or o.client_id == client_id)
                    and (symbol is None or o.symbol == symbol)]
        if not hits or (venue_id is None and client_id is None):
            raise VenueError("unknown_order", "Order does not exist.")
        return hits[-1]

    def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        with self.lock:
            return [o for o in self.orders.values() if o.is_open and symbol in (None, o.symbol)]

    def balance(self, asset: str) -> tuple[Decimal, Decimal]:
        with self.lock:
            return self.free.get(asset, D0), self.locked.get(asset, D0)

    def assets(self) -> list[str]:
        with self.lock:
            return sorted(set(self.free) | set(self.locked))

    # -- events -------------------------------------------------------------------
    def _emit(self, kind: str, order: VenueOrder, trade: Trade | None = None, reason: str = "") -> None:
        self.seq += 1
        event = ExecutionEvent(self.seq, kind, replace(order, trades=list(order.trades)), trade,
                               reason, order.updated_ns)
        for fn in list(self.subscribers):
            fn(event)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _move(self, asset: str, free: Decimal = D0, locked: Decimal = D0) -> None:
        self.free[asset] = self.free.get(asset, D0) + free
        self.locked[asset] = self.locked.get(asset, D0) + locked

    # -- orders -------------------------------------------------------------------
    def place(self, symbol: str, side: str, type_: str, quantity: Decimal, *,
              price: Decimal | None = None, stop_price: Decimal | None = None, tif: str = "GTC",
              client_id: str = "", hold_bars: int = 0) -> VenueOrder:
        """Accept an order (raising :class:`VenueError` on a rule or balance failure)."""
        with self.lock:
            m = self.market(symbol)
            if side not in ("buy", "sell") or type_ not in ("market", "limit", "stop"):
                raise VenueError("bad_request", f"unsupported order {side} {type_}")
            if client_id and any(o.client_id == client_id for o in self.open_orders()):
                raise VenueError("duplicate_client_id", "Duplicate order sent.")
            if quantity <= 0 or not _on_grid(quantity, m.step) or quantity < m.min_qty or (
                    m.max_qty > 0 and quantity > m.max_qty):
                raise VenueError("lot_size", "Filter failure: LOT_SIZE")
            if type_ == "limit" and (price is None or price <= 0):
                raise VenueError("bad_request", "limit order without a price")
            if type_ == "stop" and (stop_price is None or stop_price <= 0):
                raise VenueError("bad_request", "stop order without a stop price")
            for p in (price, stop_price):
                if p is not None and not _on_grid(p, m.tick):
                    raise VenueError("price_filter", "Filter failure: PRICE_FILTER")
            ref = price if type_ == "limit" else stop_price if type_ == "stop" else self.last_price(m.symbol)
            assert ref is not None
            if quantity * ref < m.min_notional:
                raise VenueError("min_notional", "Filter failure: NOTIONAL")
            lock = D0
            if side == "sell":
                lock = quantity
                if self.free.get(m.base, D0) < lock:
                    raise VenueError("insufficient_balance",
                                     "Account has insufficient balance for requested action.")
                self._move(m.base, -lock, lock)
            else:
                cost = quantity * ref * (1 + self.fee_rate)
                if self.free.get(m.quote, D0) < cost:
                    raise VenueError("insufficient_balance",
                                     "Account has insufficient balance for requested action.")
                if type_ != "market":
                    lock = cost
                    self._move(m.quote, -lock, lock)
            now = self.stamp(self.now_ns())
            order = VenueOrder(self.next_order_id, client_id or f"sim-{self.next_order_id}", m.symbol,
                               side, type_, quantity, price, stop_price, tif.upper(), locked=lock,
                               created_ns=now, updated_ns=now, hold_bars=hold_bars)
            self.next_order_id += 1
            self.orders[order.venue_id] = order
            self._emit("new", order)
            self._changed()
            return order

    def cancel(self, symbol: str | None = None, *, venue_id: int | None = None,
               client_id: str | None = None) -> VenueOrder:
        """Cancel an open order (``unknown_order`` when it does not exist or is closed)."""
        with self.lock:
            order = self.find(symbol, venue_id=venue_id, client_id=client_id)
            if not order.is_open:
                raise VenueError("unknown_order", "Unknown order sent.")
            self._close(order, "CANCELED", "canceled")
            self._changed()
            return order

    def expire(self, venue_id: int, reason: str = "") -> VenueOrder:
        """Expire an open order: a wire layer's time-in-force rule (Alpaca's ``day`` orders)."""
        with self.lock:
            order = self.find(venue_id=venue_id)
            if not order.is_open:
                raise VenueError("order_closed", "order is not open")
            self._close(order, "EXPIRED", "expired", reason)
            self._changed()
            return order

    def _close(self, order: VenueOrder, status: str, kind: str, reason: str = "") -> None:
        m = self.markets[order.symbol]
        if order.locked:
            self._move(m.base if order.side == "sell" else m.quote, order.locked, -order.locked)
            order.locked = D0
        order.status = status
        order.updated_ns = self.stamp(self.now_ns())
        self._emit(kind, order, reason=reason)

    # -- matching -----------------------------------------------------------------
    def advance(self, n: int = 1) -> int:
        """Close the next ``n`` bars, matching open orders on each; returns bars advanced."""
        done = 0
        with self.lock:
            for _ in range(n):
                if self.exhausted:
                    break
                self.cursor += 1
                done += 1
                self._match_bar(self.cursor)
            if done:
                self._changed()
        return done

    def _match_bar(self, index: int) -> None:
        at_ns = _ns(self.timeline[index])
        capacity: dict[str, Decimal | None] = {}
        for order in sorted(self.open_orders(), key=lambda o: o.venue_id):
            bar = self.bar(order.symbol, index)
            if bar is None:
                continue
            if order.hold_bars > 0:
                order.hold_bars -= 1
                continue
            if order.symbol not in capacity:
                capacity[order.symbol] = (None if self.volume_fraction is None else
                                          Decimal(repr(float(bar["volume"]) * self.volume_fraction)))
            self._match(order, bar, at_ns, capacity)

    def _fill_price(self, order: VenueOrder, o: Decimal, h: Decimal, low: Decimal) -> Decimal | None:
        buy = order.side == "buy"
        if order.type == "limit":
            assert order.price is not None
            if buy:
                return min(o, order.price) if low <= order.price else None
            return max(o, order.price) if h >= order.price else None
        if order.type == "stop" and not order.triggered:
            assert order.stop_price is not None
            hit = h >= order.stop_price if buy else low <= order.stop_price
            if not hit:
                return None
            order.triggered = True
            return max(o, order.stop_price) if buy else min(o, order.stop_price)
        return o

    def _match(self, order: VenueOrder, bar: pd.Series, at_ns: int,
               capacity: dict[str, Decimal | None]) -> None:
        o, h, low = (Decimal(repr(float(bar[k]))) for k in ("open", "high", "low"))
        price = self._fill_price(order, o, h, low)
        if price is None:
            if order.tif in ("IOC", "FOK"):
                self._close(order, "EXPIRED", "expired", "not filled on the next bar")
            return
        cap = capacity[order.symbol]
        qty = order.remaining if cap is None else min(order.remaining, cap)
        m = self.markets[order.symbol]
        qty = qty - (qty % m.step) if m.step > 0 else qty
        broke = False
        if order.side == "buy":
            per_unit = price * (1 + self.fee_rate)
            available = self.free.get(m.quote, D0) + order.locked
            if qty * per_unit > available:
                affordable = available / per_unit
                qty = min(qty, affordable - (affordable % m.step) if m.step > 0 else affordable)
                broke = True
        if order.tif == "FOK" and qty < order.remaining:
            self._close(order, "EXPIRED", "expired", "FOK order could not fill entirely")
            return
        if qty > 0:
            self._execute(order, m, qty, price, at_ns)
            if cap is not None:
                capacity[order.symbol] = cap - qty
        if order.is_open and order.remaining <= 0:
            order.status = "FILLED"
        if order.is_open and (order.tif == "IOC" or broke):
            self._close(order, "EXPIRED", "expired",
                        "IOC remainder" if order.tif == "IOC" else "insufficient balance")

    def _execute(self, order: VenueOrder, m: Market, qty: Decimal, price: Decimal, at_ns: int) -> None:
        quote = qty * price
        fee = (quote * self.fee_rate).quantize(Decimal("1e-8"))
        if order.side == "buy":
            release = min(order.locked, order.locked * qty / order.remaining) if order.locked else D0
            self._move(m.quote, release, -release)
            order.locked -= release
            self._move(m.quote, -(quote + fee))
            self._move(m.base, qty)
        else:
            self._move(m.base, D0, -qty)
            order.locked -= qty
            self._move(m.quote, quote - fee)
        at_ns = self.stamp(at_ns)
        trade = Trade(self.next_trade_id, price, qty, quote, fee, m.quote, at_ns)
        self.next_trade_id += 1
        order.filled += qty
        order.filled_quote += quote
        order.fee += fee
        order.trades.append(trade)
        order.updated_ns = at_ns
        if order.remaining <= 0:
            order.status = "FILLED"
            if order.locked and order.side == "buy":  # a better price left some quote locked
                self._move(m.quote, order.locked, -order.locked)
                order.locked = D0
        else:
            order.status = "PARTIALLY_FILLED"
        self._emit("trade", order, trade)


__all__ = ["ERROR_CODES", "ExecutionEvent", "Market", "Trade", "VenueBook", "VenueError", "VenueOrder"]
