"""Public fakes and helpers for unit tests. Never used by production code paths.

Sections are owned by the package area they serve; append, don't reorder.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

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
