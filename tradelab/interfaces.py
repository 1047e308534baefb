"""The Protocols that components are written against.

Concrete classes are chosen in one place only, :func:`tradelab.app.build`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol, runtime_checkable

import pandas as pd


class Bar(NamedTuple):
    """One bar as the engine receives it (floats, as in the bar contract)."""

    symbol: str
    time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


@runtime_checkable
class DataSource(Protocol):
    """Historical bars for a symbol.

    ``load`` returns a DataFrame with a DatetimeIndex and columns
    ``open, high, low, close, volume`` (float); it may still hold bad rows, which
    :func:`tradelab.data.validate.validate_bars` reports and handles per policy.
    """

    name: str

    def load(self, symbol: str, *, start: pd.Timestamp | None = None,
             end: pd.Timestamp | None = None, interval: str = "1d",
             adjust: str = "raw") -> pd.DataFrame: ...

    def fingerprint(self, symbol: str) -> str:
        """A token that changes when the underlying data changes (part of cache keys)."""
        ...


@runtime_checkable
class Cache(Protocol):
    """A key/value cache with TTL and tag invalidation."""

    def get(self, key: str) -> Any | None: ...

    def set(self, key: str, value: Any, *, ttl: float | None = None,
            tags: Iterable[str] = ()) -> None: ...

    def invalidate(self, tag: str) -> int: ...

    def clear(self) -> int: ...

    def stats(self) -> dict[str, Any]: ...


@runtime_checkable
class Clock(Protocol):
    """The time source; nothing else calls ``datetime.now()``."""

    def now(self) -> datetime: ...


@runtime_checkable
class Broker(Protocol):
    """A venue's execution client (paper, ccxt, Alpaca, ...): the one broker contract.

    * ``submit(order)`` is idempotent by ``order.client_order_id`` and returns the
      venue's order id. It raises ``BrokerRejectedError`` only on the venue's
      definitive refusal, and ``TransientBrokerError`` when the outcome is unknown
      (timeout, lost or unparseable answer, 5xx, 429): the order is then *pending*
      and resolved by :meth:`query`, never re-sent blindly.
    * ``cancel(client_order_id)`` asks the venue to cancel; True when the request
      was accepted (the order's final state comes from a report: a cancel racing a
      fill ends with the fill booked).
    * ``query(client_order_id)`` is the venue's current view of one order as an
      ``OrderReport``, or ``None`` when the venue has never seen that id.
    * ``open_orders()`` lists the venue's open orders as ``OrderReport`` objects,
      ours and others'.
    * ``balances()`` maps each asset to a ``VenueBalance``; ``positions()`` maps
      symbol to signed quantity.
    * ``rules(symbol)`` is the market's ``VenueRules`` (lot, tick, minimums), or
      ``None`` when the venue has none to apply.
    * ``poll()`` drains what the venue reported since the last call: ``BrokerUpdate``
      objects from a simulated venue, ``OrderReport`` objects from a real one.

    (Report and error types live in :mod:`tradelab.orders.brokers`, rules in
    :mod:`tradelab.orders.rules`.)

    ``simulated`` declares a venue whose fills are a pure function of the bars and
    the committed state (the paper broker): the engine then works its orders with
    ``on_bar(symbol, time, o, h, l, c, v, phase)`` at each bar's open and close, and
    a resume rebuilds it with ``restore(cash, positions, orders)``. A real venue
    reports through ``poll`` and is reconciled, never rebuilt.
    """

    name: str
    simulated: bool

    def submit(self, order: Any) -> str: ...

    def cancel(self, client_order_id: str) -> bool: ...

    def query(self, client_order_id: str) -> Any | None: ...

    def open_orders(self) -> list[Any]: ...

    def balances(self) -> dict[str, Any]: ...

    def positions(self) -> dict[str, Decimal]: ...

    def rules(self, symbol: str) -> Any | None: ...

    def poll(self) -> list[Any]: ...


@runtime_checkable
class SimulatedVenue(Broker, Protocol):
    """A broker that declares ``simulated = True``: worked against each bar, rebuilt on resume."""

    def on_bar(self, symbol: str, at: datetime, o: float, h: float, low: float, c: float,
               v: float, phase: str) -> list[Any]: ...

    def restore(self, cash: Decimal, positions: dict[str, Decimal], orders: list[Any]) -> None: ...


@runtime_checkable
class RunRecorder(Protocol):
    """The store side of a run, as the engine sees it (:class:`tradelab.store.recorder.Recorder`).

    Every method that writes raises :class:`tradelab.errors.StoreFailure` when the
    write did not happen.
    """

    run_id: int

    def snapshot(self, at: datetime, cash: Decimal, positions_value: Decimal,
                 equity: Decimal) -> None: ...

    def record_bar(self, bar: Bar) -> None:
        """Buffer the bar as received; committed with the bar's snapshot (``run_bars``)."""
        ...

    def end_bar(self, at: datetime) -> None: ...

    def flush(self) -> None: ...

    def finish(self, status: str, summary: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class LiveFeed(Protocol):
    """Bars as they happen: iterating yields ``(symbol, time, open, high, low, close, volume)``.

    ``history(symbol, through, n)`` returns the last ``n`` contract bars up to and
    including ``through`` (warmup after a restart); ``close()`` stops the feed.
    """

    def __iter__(self) -> Any: ...

    def history(self, symbol: str, through: Any, n: int) -> pd.DataFrame: ...

    def close(self) -> None: ...
