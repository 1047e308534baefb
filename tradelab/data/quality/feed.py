"""The live hook: :class:`QualityGatedFeed` and the helpers the composition root uses."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import structlog

from tradelab.data.quality.gate import QualityGate

if TYPE_CHECKING:  # pragma: no cover
    from tradelab.interfaces import LiveFeed

log = structlog.get_logger("tradelab.data.quality")


@runtime_checkable
class Backfilling(Protocol):
    """A feed that loads missed history through a replaceable ``backfill(symbol, start, end)``
    (``None``: it has none), like :class:`~tradelab.feeds.base.ThreadFeed`."""

    backfill: Callable[[str, Any, Any], Any] | None


def feed_label(feed: LiveFeed) -> str:
    """A short, secret-free name of a feed: ``ws://host:port`` or its class name."""
    url = getattr(feed, "url", None)
    if isinstance(url, str) and "://" in url:
        parts = urlsplit(url)
        host = parts.hostname or ""
        return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
    return type(feed).__name__


def is_live(feed: LiveFeed) -> bool:
    """Whether ``feed`` reports live outcomes (``stats()``, like ``WebsocketFeed``)."""
    return callable(getattr(feed, "stats", None))


# -- the live hook ---------------------------------------------------------------------------
_OWN = frozenset({"feed", "gate", "on_breach", "poll", "_watchdog", "_stop", "_closed"})


class QualityGatedFeed:
    """A live feed passed through a :class:`QualityGate`.

    Iterates ``feed`` unchanged; after each bar it reads ``feed.stats()``, records
    gaps and the wait for the bar, writes on the flush cadence and checks the
    thresholds. A watchdog thread checks staleness (and the feed's counters) while
    the engine waits for a bar. On a ``halt`` breach ``on_breach(reason)`` is called
    (``engine.request_stop``): the engine stops after the current bar. Every other
    attribute is the inner feed's (``history``, ``start_after``, ``close``...).
    """

    def __init__(self, feed: LiveFeed, gate: QualityGate,
                 on_breach: Callable[[str], None] | None = None, poll: float | None = None) -> None:
        object.__setattr__(self, "feed", feed)
        object.__setattr__(self, "gate", gate)
        object.__setattr__(self, "on_breach", on_breach)
        limit = gate.settings.max_stale_seconds
        object.__setattr__(self, "poll", poll or (min(0.1, limit / 10) if limit else 0.1))
        object.__setattr__(self, "_watchdog", None)
        object.__setattr__(self, "_stop", threading.Event())
        object.__setattr__(self, "_closed", False)
        syms = getattr(feed, "symbols", None)
        gate.feed_source = feed_label(feed)
        gate.feed_symbol = ",".join(syms) if isinstance(syms, list | tuple) else str(syms or "?")
        gate.on_breach = self._breach

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "feed"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN:
            object.__setattr__(self, name, value)
        else:  # e.g. recovery sets start_after on the feed it resumes
            setattr(self.feed, name, value)

    def __bool__(self) -> bool:
        return True

    def __len__(self) -> int:
        return len(self.feed)

    def _breach(self, reason: str) -> None:
        if self.on_breach is not None:
            self.on_breach(reason)

    def close(self) -> None:
        object.__setattr__(self, "_closed", True)
        close = getattr(self.feed, "close", None)
        if close is not None:
            close()

    def _stats(self) -> Mapping[str, Any] | None:
        try:
            return self.feed.stats()
        except RuntimeError:  # a counter changed size under us (feed thread): next time
            return None

    def _watch(self) -> None:
        gate, stop = self.gate, self._stop
        while not stop.wait(self.poll):
            stats = self._stats()
            if stats is not None:
                gate.observe_feed(stats)
            gate.check_live()

    def __iter__(self) -> Iterator[Any]:
        gate, timer = self.gate, self.gate.timer
        it = iter(self.feed)
        watchdog = threading.Thread(target=self._watch, name="tradelab-quality-watch", daemon=True)
        object.__setattr__(self, "_watchdog", watchdog)
        watchdog.start()
        gate.publish()
        try:
            started = timer()
            while True:
                gate.waiting(started)
                try:
                    bar = next(it)
                except StopIteration:
                    return
                if not isinstance(bar, tuple):
                    # A wake-up of a feed read against a deadline (tradelab.feeds.stamps.WAKE),
                    # not a bar: passed on uncounted; the wait for a fresh bar goes on.
                    yield bar
                    continue
                waited = timer() - started
                gate.waiting(None)
                gate.observe_bar(bar[0], bar[1])
                stats = self._stats()
                if stats is not None:
                    gate.observe_feed(stats)
                gate.note_wait(bar[0], bar[1], waited)
                gate.check_live()
                gate.flush(force=False)
                gate.publish()
                yield bar
                started = timer()
        finally:
            gate.waiting(None)
            self._stop.set()
            if watchdog is not threading.current_thread():
                watchdog.join(5)
            stats = self._stats()
            if stats is not None:
                gate.observe_feed(stats)
            gate.flush()
            gate.publish()




def gate_feed(feed: LiveFeed, gate: QualityGate, data: Any = None) -> LiveFeed:
    """Wrap a live feed in a :class:`QualityGatedFeed`; other feeds are returned as they are.

    When ``data`` (a ``MarketData``) is given and the feed backfills, the validation
    report of each backfill load is fed to the gate too.
    """
    if not is_live(feed) or isinstance(feed, QualityGatedFeed):
        return feed
    if data is not None and isinstance(feed, Backfilling) and callable(backfill := feed.backfill):
        def gated_backfill(symbol: str, start: Any, end: Any) -> Any:
            before = data.last_report
            frame = backfill(symbol, start, end)
            report = data.last_report
            if report is not None and report is not before:
                gate.observe_report(report, role="backfill")
            return frame

        feed.backfill = gated_backfill
    return QualityGatedFeed(feed, gate)


__all__ = ["Backfilling", "QualityGatedFeed", "feed_label", "gate_feed", "is_live"]
