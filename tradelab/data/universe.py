"""Universes of symbols and the aligned multi-symbol panel a portfolio strategy reads.

Named universes
---------------
``sp20``
    The 20 US large caps the ``sample`` source serves from skfolio (1990–2022, close only).
    They were picked with hindsight (large caps at the end of the period), so any
    backtest on them carries survivorship bias: good for testing mechanics, not for
    judging a strategy's returns.
``kopep``
    ``KO`` and ``PEP``: the pair of the shipped pairs trade.

Alignment rule (one rule, everywhere a panel is built)
------------------------------------------------------
The panel's time stamps are the **union** of the symbols' time stamps. For a symbol
without a bar at a time stamp:

* **before its first bar** its ``close``/``open`` are NaN, ``listed`` is False and a
  portfolio strategy's weight on it must be 0 (a non-zero weight is an error);
* **after its first bar** (a missing bar in the middle, or after its last bar) its
  ``close`` and ``open`` hold the last close, so positions are marked at the last
  known price, and ``tradable`` is False: no order is sent for it on that bar (its
  position is kept as it is until it has a bar again).

``tradable`` is True exactly where the symbol has a real bar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tradelab.data.sample import STOCKS, SampleSource, is_close_only
from tradelab.data.validate import validate_bars
from tradelab.errors import DataSourceError
from tradelab.interfaces import DataSource

UNIVERSES: dict[str, tuple[str, ...]] = {
    "sp20": STOCKS,
    "kopep": ("KO", "PEP"),
}


def universe_symbols(universe: str | Sequence[str]) -> tuple[str, ...]:
    """The symbols of a named universe, or the given symbols (upper case, de-duplicated).

    Raises
    ------
    DataSourceError
        An unknown universe name (the message lists the known ones) or an empty list.
    """
    if isinstance(universe, str):
        if universe in UNIVERSES:
            return UNIVERSES[universe]
        if "," not in universe:
            raise DataSourceError(
                f"universe = {universe!r}: unknown; known universes: {', '.join(UNIVERSES)} "
                "(or give symbols, e.g. 'KO,PEP')")
        universe = universe.split(",")
    symbols = tuple(dict.fromkeys(s.strip().upper() for s in universe if s.strip()))
    if not symbols:
        raise DataSourceError(f"universe = {universe!r}: no symbols")
    return symbols


def load_universe(universe: str | Sequence[str], source: str | DataSource = "sample",
                  start: Any = None, end: Any = None, *, market: Any = None,
                  policy: str = "raise") -> dict[str, pd.DataFrame]:
    """Validated bars of every symbol of a universe.

    Parameters
    ----------
    universe
        A name from :data:`UNIVERSES`, a list of symbols or ``"KO,PEP"``.
    source
        A source name, or a :class:`~tradelab.interfaces.DataSource` object.
    start, end
        Inclusive bounds (naive = UTC).
    market
        A :class:`~tradelab.data.service.MarketData` (e.g. ``tl.build().data``): bars go
        through its cache and validation. Without it only ``source="sample"`` or a source
        object can be used, validated here with ``policy``.
    policy
        Validation policy when ``market`` is not given.

    Returns
    -------
    dict
        Symbol → contract bars, in the universe's order.
    """
    symbols = universe_symbols(universe)
    if market is not None:
        name = source if isinstance(source, str) else getattr(source, "name", None)
        return {s: market.load(s, source=name, start=start, end=end) for s in symbols}
    if isinstance(source, str):
        if source != "sample":
            raise DataSourceError(
                f"source = {source!r}: without market= only 'sample' is available here; "
                "pass market=tl.build().data for the configured sources")
        source = SampleSource()
    out: dict[str, pd.DataFrame] = {}
    for s in symbols:
        raw = source.load(s, start=start, end=end)
        out[s], _ = validate_bars(raw, policy, source=getattr(source, "name", "?"), symbol=s)
    return out


@dataclass(frozen=True)
class Panel:
    """Bars of several symbols on one time axis (see the module docstring for the rule).

    Attributes
    ----------
    close, open
        Time × symbol prices: NaN before a symbol's first bar, the last close held
        over a missing bar.
    tradable
        Time × symbol: the symbol has a real bar at that time.
    listed
        Time × symbol: at or after the symbol's first bar.
    close_only
        Every symbol's bars are close only (fills can only be at a close).
    """

    close: pd.DataFrame
    open: pd.DataFrame
    tradable: pd.DataFrame
    listed: pd.DataFrame
    close_only: bool

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(str(c) for c in self.close.columns)

    @property
    def index(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.close.index)

    def __len__(self) -> int:
        return len(self.close)

    def head(self, n: int) -> Panel:
        """The first ``n`` bars (what a strategy saw at bar ``n - 1``)."""
        return Panel(self.close.iloc[:n], self.open.iloc[:n], self.tradable.iloc[:n],
                     self.listed.iloc[:n], self.close_only)

    def returns(self) -> pd.DataFrame:
        """Close-to-close simple returns (0 over a held bar, NaN before listing)."""
        return self.close / self.close.shift(1) - 1.0


def align(bars: Mapping[str, pd.DataFrame]) -> Panel:
    """Align per-symbol contract bars on the union of their time stamps.

    Raises
    ------
    DataSourceError
        No symbols, or a symbol without any bar.
    """
    if not bars:
        raise DataSourceError("align: no symbols given")
    empty = [s for s, b in bars.items() if len(b) == 0]
    if empty:
        raise DataSourceError(f"align: symbol(s) without bars: {', '.join(empty)}")
    index = pd.DatetimeIndex(sorted(set().union(*(b.index for b in bars.values()))), name="time")
    raw_close = pd.DataFrame({s: b["close"] for s, b in bars.items()}).reindex(index)
    raw_open = pd.DataFrame({s: b["open"] for s, b in bars.items()}).reindex(index)
    tradable = raw_close.notna()
    listed = tradable.cummax()
    close = raw_close.ffill()
    # A held bar opens where the last bar closed: nothing traded in between.
    opens = raw_open.where(tradable, close)
    close_only = all(is_close_only(b) for b in bars.values())
    return Panel(close.astype("float64"), opens.astype("float64"), tradable, listed, close_only)


def panel_from_close(close: pd.DataFrame) -> Panel:
    """A close-only panel from a time × symbol frame of closes (NaN = no bar); for tests
    and notebooks that start from a frame rather than from a source."""
    bars = {}
    for s in close.columns:
        c = close[s].dropna().astype("float64")
        frame = pd.DataFrame({"open": c, "high": c, "low": c, "close": c, "volume": 0.0})
        frame.attrs["close_only"] = True
        bars[str(s)] = frame
    return align(bars)


def load_panel(universe: str | Sequence[str], source: str | DataSource = "sample",
               start: Any = None, end: Any = None, **kwargs: Any) -> Panel:
    """:func:`load_universe` then :func:`align`."""
    return align(load_universe(universe, source, start, end, **kwargs))


__all__ = ["UNIVERSES", "Panel", "align", "load_panel", "load_universe", "panel_from_close",
           "universe_symbols"]
