"""Public fakes and helpers for unit tests. Never used by production code paths.

Sections are owned by the package area they serve; append, don't reorder.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from tradelab.strategy.base import Signals, Strategy

# --- data -------------------------------------------------------------------------


def make_bars(n: int = 500, seed: int = 0, start: str = "2020-01-01",
              freq: str = "D", price: float = 100.0) -> pd.DataFrame:
    """Synthetic contract bars (a geometric random walk). Unit tests only.

    Real data is used everywhere else; this exists for tests that need a
    specific, small, fast series.
    """
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[price], close[:-1]]) * np.exp(rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.004, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.004, n)))
    volume = rng.integers(1_000, 100_000, n).astype(float)
    index = pd.date_range(start, periods=n, freq=freq, tz="UTC", name="time")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": volume}, index=index)

# --- data/cache fakes -------------------------------------------------------------


class CountingSource:
    """A :class:`~tradelab.interfaces.DataSource` over in-memory frames that counts loads.

    ``calls`` records every ``load`` as ``(symbol, start, end, interval, adjust)``;
    assign ``version`` to change the fingerprint, as rewriting a file would.
    """

    def __init__(self, frames: dict[str, pd.DataFrame], name: str = "fake",
                 adjust: str = "raw") -> None:
        self.frames = dict(frames)
        self.name = name
        self.adjust = adjust
        self.version = 0
        self.calls: list[tuple[object, ...]] = []

    def fingerprint(self, symbol: str) -> str:
        return f"{self.name}-v{self.version}"

    def load(self, symbol: str, *, start: pd.Timestamp | None = None,
             end: pd.Timestamp | None = None, interval: str = "1d",
             adjust: str = "raw") -> pd.DataFrame:
        from tradelab.data.bars import slice_time
        from tradelab.errors import DataSourceError

        self.calls.append((symbol, start, end, interval, adjust))
        if symbol not in self.frames:
            raise DataSourceError(f"{self.name}: unknown symbol {symbol!r}")
        return slice_time(self.frames[symbol].copy(), start, end)


class ManualClock:
    """Monotonic seconds that only move when told to (for cache TTL tests)."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- engine fakes -----------------------------------------------------------------


class FlakyBroker:
    """Wraps a broker; ``submit`` raises ``TransientBrokerError`` ``failures`` times, then works.

    With ``accept_then_timeout=True`` the first failing calls *do* reach the inner
    broker before raising ``TimeoutError``: the order was accepted but the reply
    was lost, which is what client-id deduplication must absorb.
    """

    name = "flaky"

    def __init__(self, inner, failures: int = 2, accept_then_timeout: bool = False) -> None:
        self.inner, self.failures, self.accept_then_timeout = inner, failures, accept_then_timeout
        self.calls = 0

    def submit(self, order):
        from tradelab.orders.brokers import TransientBrokerError

        self.calls += 1
        if self.calls <= self.failures:
            if self.accept_then_timeout:
                self.inner.submit(order)
                raise TimeoutError("reply lost after the broker accepted the order")
            raise TransientBrokerError(f"connection reset (attempt {self.calls})")
        return self.inner.submit(order)

    def __getattr__(self, name):
        return getattr(self.inner, name)


class RecordingBroker:
    """Accepts every order, fills nothing, remembers what it was sent (dedupes by client id)."""

    name = "recording"
    simulated = False  # behaves as a real venue that never fills

    def __init__(self) -> None:
        self.sent: dict = {}
        self.cancelled: list[str] = []

    def submit(self, order) -> str:
        self.sent.setdefault(order.client_order_id, order.snapshot())
        return "rec-" + order.client_order_id

    def cancel(self, client_order_id: str) -> bool:
        self.cancelled.append(client_order_id)
        return True

    def open_ids(self) -> list[str]:
        return [c for c in self.sent if c not in self.cancelled]

    def query(self, client_order_id: str):
        from tradelab.orders.brokers import OrderReport

        order = self.sent.get(client_order_id)
        if order is None:
            return None
        status = "cancelled" if client_order_id in self.cancelled else "accepted"
        return OrderReport(client_order_id, "rec-" + client_order_id, status, order.symbol, order.side,
                           order.quantity or order.estimate, Decimal(0), Decimal(0),
                           order.created_at)

    def open_orders(self) -> list:
        return [self.query(c) for c in self.open_ids()]

    def balances(self) -> dict:
        return {}

    def positions(self) -> dict:
        return {}

    def rules(self, symbol: str) -> None:
        return None

    def poll(self) -> list:
        return []


# --- feeds fakes ------------------------------------------------------------------


class GrowingSource:
    """A :class:`~tradelab.interfaces.DataSource` whose bars appear over time (polling feeds).

    Only the first ``visible`` rows of ``frame`` exist; :meth:`publish` reveals more,
    :meth:`fail` makes the next ``n`` loads raise ``DataSourceError`` (an outage).
    Rows are returned as they are (no validation), like a raw REST source.
    """

    name = "growing"

    def __init__(self, frame: pd.DataFrame, visible: int = 0) -> None:
        import threading

        self.frame, self.visible = frame, visible
        self.loads = 0
        self._failures = 0
        self._lock = threading.Lock()

    def publish(self, n: int = 1) -> None:
        with self._lock:
            self.visible = min(len(self.frame), self.visible + n)

    def fail(self, n: int) -> None:
        with self._lock:
            self._failures = n

    def fingerprint(self, symbol: str) -> str:
        return f"growing-{self.visible}"

    def load(self, symbol: str, *, start: pd.Timestamp | None = None,
             end: pd.Timestamp | None = None, interval: str = "1d",
             adjust: str = "raw") -> pd.DataFrame:
        from tradelab.data.bars import slice_time
        from tradelab.errors import DataSourceError

        with self._lock:
            self.loads += 1
            if self._failures > 0:
                self._failures -= 1
                raise DataSourceError("growing: 503 Service Unavailable")
            rows = self.frame.iloc[:self.visible].copy()
        return slice_time(rows, start, end)


def stop_process(proc: Any, grace: float = 10.0) -> None:
    """Stop a server started for a test or benchmark: SIGTERM, then SIGKILL after ``grace`` s."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(grace)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux ``/proc``; 0 elsewhere)."""
    import os
    from pathlib import Path

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


# --- reconciliation fakes ---------------------------------------------------------


class FakeVenue:
    """A scriptable real venue (``simulated = False``) holding orders, positions and one balance.

    ``submit`` accepts an order (idempotent by client id); with ``drop_acks`` > 0 the
    next submissions are accepted and then answered with ``TransientBrokerError`` (a
    lost acknowledgement). :meth:`fill` executes part of an order (position and
    quote balance follow), :meth:`place` puts an order there by someone else's hand,
    :meth:`set_position` changes a position behind the book's back.
    """

    name = "fake"
    simulated = False

    def __init__(self, cash: Decimal | int | str = 0, quote: str = "USD") -> None:
        self.quote = quote
        self.cash = Decimal(cash)
        self.reports: dict[str, Any] = {}
        self.held: dict[str, Decimal] = {}
        self.drop_acks = 0

    def _at(self) -> Any:
        from datetime import UTC, datetime

        return datetime(2026, 1, 5, tzinfo=UTC)

    def submit(self, order: Any) -> str:
        from tradelab.orders.brokers import OrderReport, TransientBrokerError

        if order.client_order_id not in self.reports:
            self.reports[order.client_order_id] = OrderReport(
                order.client_order_id, "v-" + order.client_order_id, "accepted", order.symbol,
                order.side, order.quantity or order.estimate, Decimal(0), Decimal(0), self._at())
        if self.drop_acks > 0:
            self.drop_acks -= 1
            raise TransientBrokerError("acknowledgement lost")
        return str(self.reports[order.client_order_id].venue_order_id)

    def cancel(self, client_order_id: str) -> bool:
        from dataclasses import replace

        r = self.reports.get(client_order_id)
        if r is None or not r.is_open:
            return False
        self.reports[client_order_id] = replace(r, status="cancelled", sequence=r.sequence + 1)
        return True

    def fill(self, client_order_id: str, quantity: Decimal | int | str, price: Decimal | int | str,
             fee: Decimal | int | str = 0) -> Any:
        """Execute ``quantity`` of an order at ``price``; returns the venue's new report."""
        from dataclasses import replace

        r = self.reports[client_order_id]
        qty, px, fee = Decimal(quantity), Decimal(price), Decimal(fee)
        cum = r.cum_quantity + qty
        avg = (r.avg_price * r.cum_quantity + px * qty) / cum
        signed = qty if r.side == "buy" else -qty
        self.held[r.symbol] = self.held.get(r.symbol, Decimal(0)) + signed
        self.cash -= signed * px + fee
        new = replace(r, status="filled" if cum >= r.quantity else "partially_filled",
                      cum_quantity=cum, avg_price=avg, last_quantity=qty, last_price=px, fee=fee,
                      trade_id=f"t-{client_order_id}-{r.sequence + 1}", sequence=r.sequence + 1)
        self.reports[client_order_id] = new
        return new

    def place(self, client_order_id: str, symbol: str, side: str, quantity: Decimal | int | str,
              cum_quantity: Decimal | int | str = 0, avg_price: Decimal | int | str = 0) -> Any:
        """An order at the venue that was not sent through this book (by hand, another program)."""
        from tradelab.orders.brokers import OrderReport

        cum = Decimal(cum_quantity)
        report = OrderReport(client_order_id, "v-" + client_order_id,
                             "partially_filled" if cum else "accepted", symbol, side, Decimal(quantity),
                             cum, Decimal(avg_price), self._at(), sequence=1)
        self.reports[client_order_id] = report
        return report

    def set_position(self, symbol: str, quantity: Decimal | int | str) -> None:
        self.held[symbol] = Decimal(quantity)

    def query(self, client_order_id: str) -> Any:
        return self.reports.get(client_order_id)

    def open_orders(self) -> list:
        return [r for r in self.reports.values() if r.is_open]

    def balances(self) -> dict:
        from tradelab.orders.brokers import VenueBalance

        return {self.quote: VenueBalance(self.quote, self.cash)}

    def positions(self) -> dict:
        return {k: v for k, v in self.held.items() if v}

    def rules(self, symbol: str) -> None:
        return None

    def poll(self) -> list:
        return []


class CountingBroker:
    """Wraps a broker and counts every method called on it (``calls['submit']``, ...)."""

    def __init__(self, inner: Any) -> None:
        from collections import Counter

        self.inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attr(*args, **kwargs)

        return counted


def book_fills(bus: Any, portfolio: Any) -> None:
    """Book fills into ``portfolio`` as the engine's booking step does (and announce the
    position), for tests that drive an OrderManager without an engine."""
    from tradelab.bus import STAGE_BOOK
    from tradelab.events import OrderFilled, OrderPartiallyFilled, PositionChanged

    def on_fill(ev: Any) -> None:
        f = ev.fill
        if f is not None:
            pos = portfolio.apply_fill(f.symbol, f.side, f.quantity, f.price, f.fees)
            bus.publish(PositionChanged(ev.at, portfolio.account, f.symbol, pos.quantity,
                                        pos.avg_price, pos.realized_pnl, portfolio.cash))

    bus.step(OrderFilled, on_fill, stage=STAGE_BOOK)
    bus.step(OrderPartiallyFilled, on_fill, stage=STAGE_BOOK)

# --- strategy fakes -----------------------------------------------------------------


class ScriptedStrategy(Strategy):
    """Flags read from each bar's volume code (causal: this bar only): 1 enters, 2 exits.
    Unit tests only: the bars (:func:`scripted_bars`) script the orders."""

    name = "scripted"
    numpy_columns = True

    def signals(self, bars: pd.DataFrame) -> Signals:
        code = np.asarray(bars["volume"])
        return Signals(code == 1, code == 2)


class ScriptedLongShort(ScriptedStrategy):
    """:class:`ScriptedStrategy` that also states the short side (volume 3 / 4)."""

    name = "scripted_ls"

    def signals(self, bars: pd.DataFrame) -> Signals:
        code = np.asarray(bars["volume"])
        return Signals(code == 1, code == 2, short_entries=code == 3, short_exits=code == 4)


def scripted_bars(rows: list[tuple[float, float, float, float, int]]) -> pd.DataFrame:
    """Daily UTC bars from ``(open, high, low, close, code)`` rows; the code sits in
    ``volume``, where the scripted strategies read their flags."""
    index = pd.date_range("2024-01-01", periods=len(rows), freq="D", tz="UTC")
    return pd.DataFrame(rows, index=index, columns=["open", "high", "low", "close", "volume"],
                        dtype=float)


#: Source of a portfolio strategy that declares a ``decision_window`` (10 bars) smaller
#: than what its weights read (a 50-bar mean): ``tradelab check`` must fail it and
#: ``paper`` refuse it. Written to a strategies folder by the tests.
SHORT_MEMORY_SOURCE = (
    "from tradelab.strategy.portfolio import PortfolioStrategy\n\n"
    "class ShortMemory(PortfolioStrategy):\n"
    "    '''Long KO above its 50-bar mean, declaring 10 bars.'''\n"
    "    name = 'short_memory'\n"
    "    universe = ('KO', 'PEP')\n"
    "    decision_window = 10\n"
    "    def weights(self, panel):\n"
    "        up = panel.close['KO'] > panel.close['KO'].rolling(50).mean()\n"
    "        return up.astype(float).to_frame('KO')\n")
