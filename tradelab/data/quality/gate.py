"""The :class:`QualityGate`: record outcomes, evaluate ``[data.quality]``, describe breaches."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from tradelab.data.quality.breach import Breach, number_text
from tradelab.data.quality.events import FeedStaleness, QualityBreached, QualityRecorded
from tradelab.errors import DataQualityError
from tradelab.events import EngineStarted, Event, RiskAlert

if TYPE_CHECKING:
    from tradelab.store import Store

log = structlog.get_logger("tradelab.data.quality")

FRACTION_MIN_SEEN = 100
MAX_FLUSH_SECONDS = 1.0
RULE = "data_quality"
Key = tuple[str, str, str, str]  # source, symbol, kind, reason


# -- the gate ---------------------------------------------------------------------------------
class QualityGate:
    """Records data-quality outcomes and checks them against ``[data.quality]``.

    Parameters
    ----------
    settings
        :class:`tradelab.config.QualitySettings`.
    store
        Where outcomes are written (``data_quality_events``); ``None``: nowhere.
    account
        Account name the rows belong to (its id is looked up; absent is fine).
    gap_factor
        Live gaps: consecutive bars further apart than this many median intervals.
    flush_seconds
        Pending counts are written at most this often (capped at one second).
    timer
        Monotonic clock (tests inject one).

    Thread safety: every method may be called from the engine thread and from
    a feed watchdog thread; bus events are only published from :meth:`publish`,
    which the engine thread calls.
    """

    def __init__(self, settings: Any, *, store: Store | None = None, account: str | None = None,
                 gap_factor: float = 5.0, flush_seconds: float = MAX_FLUSH_SECONDS,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.store = store
        self.account = account
        self.account_id: int | None = None
        self.run_id: int | None = None
        self.gap_factor = gap_factor
        self.flush_seconds = min(flush_seconds or MAX_FLUSH_SECONDS, MAX_FLUSH_SECONDS)
        self.timer = timer
        self.bus: Any = None
        self.clock: Any = None
        self.wall: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.on_breach: Callable[[str], None] | None = None
        self.breaches: list[Breach] = []
        self.halted: Breach | None = None
        # per-run totals (all sources and symbols): what the thresholds look at
        self.rejected: Counter[str] = Counter()
        self.rejected_total = 0
        self.seen = 0
        self.gaps = 0
        self.first_gap = ""
        self.totals: Counter[Key] = Counter()
        self._pending: Counter[Key] = Counter()
        self._details: dict[Key, str] = {}
        self._breach_rows: list[dict[str, Any]] = []
        self._events: list[Event] = []
        self._lock = threading.RLock()
        self._last_flush = timer()
        self._feed_seen: dict[str, Any] = {}
        self._waiting_since: float | None = None
        self._last_bar: dict[str, datetime] = {}
        self._intervals: dict[str, deque[float]] = {}
        self._gap_limit: dict[str, float] = {}
        self.feed_source = "feed"
        self.feed_symbol = "?"
        self._bound = False

    # -- wiring ----------------------------------------------------------------------------
    def bind(self, engine: Any) -> None:
        """Attach to an engine: run and account ids, bus, clocks; write what is pending."""
        with self._lock:
            run_id = getattr(engine, "run_id", None)
            self.run_id = run_id if isinstance(run_id, int) else None
            rec = getattr(engine, "recorder", None)
            self.account_id = getattr(rec, "account_id", None)
            self.account = getattr(engine, "account", self.account)
            self.bus = engine.bus
            self.clock = engine.clock
            wall = getattr(engine, "wall_clock", None)
            if wall is not None:
                self.wall = wall.now
            self._bound = True
        feed = getattr(engine, "feed", None)
        if feed is not None and getattr(feed, "gate", None) is self and feed.on_breach is None:
            # a QualityGatedFeed of this gate that nobody stops yet
            feed.on_breach = engine.request_stop
        # Outcomes of the bars the run starts from reach the metrics when it starts
        # (monitoring is attached between building the engine and running it).
        engine.bus.subscribe(EngineStarted, lambda _ev: self.publish())
        self.flush()

    # -- inputs ----------------------------------------------------------------------------
    def observe_report(self, report: Any, *, role: str = "load") -> None:
        """Count a :class:`~tradelab.data.validate.ValidationReport`'s outcomes."""
        src, sym = str(report.source), str(report.symbol)
        with self._lock:
            self.seen += int(report.rows_in)
            problems = report.problems()
            if report.policy == "drop":
                for kind, n in problems.items():
                    self._add(src, sym, "rejected", kind, n, _example(report, kind))
                    self.rejected[kind] += n
                self.rejected_total += int(report.dropped)
            elif report.policy == "fill":
                for kind, n in problems.items():
                    self._add(src, sym, "repaired", kind, n, _example(report, kind))
                if report.dropped:
                    self._add(src, sym, "rejected", "unrepairable", report.dropped)
                    self.rejected["unrepairable"] += int(report.dropped)
                    self.rejected_total += int(report.dropped)
            if report.gap_count:
                first = str(report.gaps[0]) if report.gaps else ""
                self._add(src, sym, "gap", "interval", report.gap_count, f"{role}: first {first}")
                self.gaps += int(report.gap_count)
                self.first_gap = self.first_gap or first

    def observe_feed(self, stats: Mapping[str, Any]) -> None:
        """Count what a live feed's ``stats()`` added since the last call."""
        src, sym = self.feed_source, self.feed_symbol
        with self._lock:
            prev = self._feed_seen
            new_rejected = Counter(stats.get("rejected", {})) - Counter(prev.get("rejected", {}))
            for reason, n in new_rejected.items():
                self._add(src, sym, "rejected", reason, n)
                self.rejected[reason] += n
                self.rejected_total += n
                self.seen += n
            new_dropped = Counter(stats.get("dropped", {})) - Counter(prev.get("dropped", {}))
            for reason, n in new_dropped.items():
                self._add(src, sym, "dropped", reason, n)
            stale = int(stats.get("stale", 0)) - int(prev.get("stale", 0))
            if stale > 0:
                self._add(src, sym, "stale", "connection", stale,
                          "no message within the feed's stale_after: reconnected")
            self._feed_seen = {"rejected": dict(stats.get("rejected", {})),
                               "dropped": dict(stats.get("dropped", {})),
                               "stale": int(stats.get("stale", 0))}

    def observe_bar(self, symbol: str, at: datetime) -> None:
        """A fresh bar was delivered: counts toward ``seen``; a gap is recorded."""
        with self._lock:
            self.seen += 1
            last = self._last_bar.get(symbol)
            self._last_bar[symbol] = at
            if last is None:
                return
            delta = (at - last).total_seconds()
            if delta <= 0:
                return
            hist = self._intervals.setdefault(symbol, deque(maxlen=64))
            limit = self._gap_limit.get(symbol)
            if limit is not None and delta > limit:
                self.gaps += 1
                gap = f"{last.isoformat()} → {at.isoformat()} ({at - last})"
                self.first_gap = self.first_gap or gap
                self._add(self.feed_source, symbol, "gap", "interval", 1, gap)
            hist.append(delta)
            if len(hist) >= 3 and (limit is None or len(hist) % 16 == 0):
                self._gap_limit[symbol] = statistics.median(hist) * self.gap_factor

    def waiting(self, since: float | None) -> None:
        """The engine started (a time) or stopped (``None``) waiting for the next bar."""
        self._waiting_since = since

    def staleness(self, now: float | None = None) -> float:
        """Seconds the engine has been waiting for a fresh bar (0 while it has one)."""
        since = self._waiting_since
        return 0.0 if since is None else max(0.0, (self.timer() if now is None else now) - since)

    def note_wait(self, symbol: str, at: datetime, seconds: float) -> None:
        """The engine waited ``seconds`` for the bar of ``symbol`` at ``at`` (staleness gauge)."""
        bus = self.bus
        if bus is not None and bus.wants(FeedStaleness):
            with self._lock:
                self._events.append(FeedStaleness(at, self.feed_source, symbol, seconds))

    def record(self, symbol: str, kind: str, reason: str, n: int = 1, detail: str = "") -> None:
        """Count an outcome found after the feed delivered a bar, under the feed's name
        (e.g. a portfolio engine's late bar: ``dropped``/``late_bar``, see
        :mod:`tradelab.feeds.stamps`)."""
        with self._lock:
            self._add(self.feed_source, symbol, kind, reason, n, detail)

    def _add(self, src: str, sym: str, kind: str, reason: str, n: int, detail: str = "") -> None:
        if n <= 0:
            return
        key = (src, sym, kind, reason)
        self._pending[key] += int(n)
        self.totals[key] += int(n)
        if detail:
            self._details[key] = detail
        self._events.append(QualityRecorded(self._now_event(), src, sym, kind, reason, int(n)))

    def _now_event(self) -> datetime:
        clock = self.clock
        return clock.now() if clock is not None else datetime.now(UTC)

    # -- thresholds ------------------------------------------------------------------------
    def evaluate(self, *, live: bool, source: str, symbol: str, unit: str,
                 bars: int | None = None) -> list[Breach]:
        """Every threshold breached by the run's totals (and ``bars``, before a run)."""
        s = self.settings
        out: list[Breach] = []
        with self._lock:
            breakdown = tuple(sorted(((r, n) for r, n in self.rejected.items() if n),
                                     key=lambda rn: (-rn[1], rn[0])))
            what = f"rejected {unit}"
            if s.max_rejected is not None and self.rejected_total > s.max_rejected:
                out.append(Breach("max_rejected", s.max_rejected, self.rejected_total, source,
                                  symbol, what, breakdown=breakdown))
            frac_ok = self.seen and (not live or self.seen >= FRACTION_MIN_SEEN)
            if s.max_rejected_fraction is not None and frac_ok:
                frac = self.rejected_total / self.seen
                if frac > s.max_rejected_fraction:
                    out.append(Breach("max_rejected_fraction", s.max_rejected_fraction,
                                      frac, source, symbol, f"{what} fraction",
                                      breakdown=breakdown, count=self.rejected_total,
                                      note=f"{self.rejected_total} of {self.seen}"))
            for reason, limit in sorted(s.max_rejected_by_reason.items()):
                n = self.rejected.get(reason, 0)
                if n > limit:
                    out.append(Breach(f"max_rejected_by_reason.{reason}", limit, n, source, symbol,
                                      f"{what} for {reason}"))
            if s.max_gaps is not None and self.gaps > s.max_gaps:
                out.append(Breach("max_gaps", s.max_gaps, self.gaps, source, symbol, "gaps",
                                  note=f"first {self.first_gap}" if self.first_gap else ""))
            if s.max_stale_seconds is not None and live:
                waited = self.staleness()
                if waited > s.max_stale_seconds:
                    out.append(Breach("max_stale_seconds", s.max_stale_seconds, waited,
                                      source, symbol, "seconds without a fresh bar"))
            if s.min_bars is not None and bars is not None and bars < s.min_bars:
                out.append(Breach("min_bars", s.min_bars, bars, source, symbol, "bars", op="<"))
        return out

    def check_start(self, report: Any) -> None:
        """Gate the bars a run starts from; raise :class:`DataQualityError` on a breach.

        The report's outcomes are recorded (written now on a breach, else when the
        engine is bound and has a run id).
        """
        if report is None:
            return
        self.observe_report(report, role="start")
        breaches = self.evaluate(live=False, source=str(report.source), symbol=str(report.symbol),
                                 unit="rows", bars=int(report.rows_out))
        if not breaches:
            return
        self._record_breaches(breaches, when="before start")
        if self.settings.action == "halt":
            self.flush()
            reasons = "; ".join(b.reason for b in breaches)
            raise DataQualityError(
                f"data quality: {report.source}:{report.symbol}: {reasons}; the run was not "
                f"started ([data.quality], action = \"halt\")", tuple(breaches))

    def check_live(self) -> Breach | None:
        """Evaluate the live thresholds; on a new breach record it and (``halt``) stop the run.

        Returns the breach that halts the run, if this call caused it.
        """
        with self._lock:
            if self.halted is not None:
                return None
            new = [b for b in self.evaluate(live=True, source=self.feed_source,
                                            symbol=self.feed_symbol, unit="messages")
                   if b.threshold not in {x.threshold for x in self.breaches}]
            if not new:
                return None
            self._record_breaches(new, when="during the run")
            halt = self.settings.action == "halt"
            if halt:
                self.halted = new[0]
        self.flush()
        if halt and self.on_breach is not None:
            self.on_breach(f"data quality: {new[0]}")
        return new[0] if halt else None

    def _record_breaches(self, breaches: list[Breach], when: str) -> None:
        with self._lock:
            action = self.settings.action
            for b in breaches:
                self.breaches.append(b)
                self._breach_rows.append({
                    "source": b.source, "symbol": b.symbol, "kind": "breach",
                    "reason": b.threshold, "count": b.stored_count,
                    "detail": f"{b} [{action}, {when}]"})
                self._events.append(QualityBreached(self._now_event(), b, action))
                if b.threshold == "max_stale_seconds":
                    self._add(b.source, b.symbol, "stale", "no_fresh_bar", 1,
                              f"no fresh bar for {number_text(b.observed)}s")
                    self._events.append(FeedStaleness(self._now_event(), b.source, b.symbol,
                                                      float(b.observed)))
        log.warning("data_quality_breach", action=action, when=when,
                    breaches=[str(b) for b in breaches])

    # -- outputs -----------------------------------------------------------------------------
    def flush(self, force: bool = True) -> int:
        """Write pending counts and breaches (one transaction); returns rows written.

        ``force=False`` writes only when ``flush_seconds`` have passed since the last write.
        Nothing is written before the run has an id unless a breach is pending (the
        run that refused to start has none).
        """
        with self._lock:
            now = self.timer()
            if not force and now - self._last_flush < self.flush_seconds:
                return 0
            if self.store is None or not (self._bound or self._breach_rows):
                return 0
            at = self.wall()
            rows = [{"source": src, "symbol": sym, "kind": kind, "reason": reason, "count": n,
                     "detail": self._details.get((src, sym, kind, reason)), "at": at}
                    for (src, sym, kind, reason), n in self._pending.items()]
            rows += [{**r, "at": at} for r in self._breach_rows]
            if not rows:
                self._last_flush = now
                return 0
            if self.account_id is None and self.account is not None:
                self.account_id = self.store.quality.account_id(self.account)
            for r in rows:
                r["account_id"], r["run_id"] = self.account_id, self.run_id
            try:
                written = self.store.quality.record(rows)
            except Exception as exc:  # the store being down must not kill the trading loop
                log.error("data_quality_write_failed", error=f"{type(exc).__name__}: {exc}")
                return 0
            self._pending.clear()
            self._details.clear()
            self._breach_rows.clear()
            self._last_flush = now
            return written

    def publish(self) -> None:
        """Deliver queued events on the engine's bus (engine thread only)."""
        bus = self.bus
        if bus is None:
            return
        with self._lock:
            events, self._events = self._events, []
        for ev in events:
            bus.publish(ev)
            if isinstance(ev, QualityBreached):
                severity = "critical" if ev.action == "halt" else "warning"
                at = self.clock.now() if self.clock is not None else ev.at
                bus.publish(RiskAlert(at, str(self.account or ""), RULE, str(ev.breach), severity))

    def stats(self) -> dict[str, Any]:
        """Totals so far: rejected by reason, seen, gaps, breaches."""
        with self._lock:
            return {"rejected": dict(self.rejected), "rejected_total": self.rejected_total,
                    "seen": self.seen, "gaps": self.gaps,
                    "breaches": [str(b) for b in self.breaches],
                    "halted": None if self.halted is None else str(self.halted)}


def _example(report: Any, kind: str) -> str:
    rows = report.examples.get(kind, ()) if hasattr(report, "examples") else ()
    return f"first: {rows[0]}" if rows else ""



__all__ = ["FRACTION_MIN_SEEN", "MAX_FLUSH_SECONDS", "RULE", "Breach", "QualityGate"]
