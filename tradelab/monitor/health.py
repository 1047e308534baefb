"""Health and readiness checks, and a periodic monitor that alerts on state changes.

A check is a callable returning ``(ok, detail)`` (or just ``ok``); raising
counts as failing. :class:`HealthMonitor` runs the checks every few seconds in
a daemon thread and notifies ``health_alert`` when a check starts failing (and
again when it recovers), never on every failed poll.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from tradelab.monitor.redact import redact_text

if TYPE_CHECKING:  # pragma: no cover - interfaces imports pandas, which monitoring does not need
    from tradelab.interfaces import Broker
    from tradelab.store import Store

log = structlog.get_logger("tradelab.monitor")
Check = Callable[[], "tuple[bool, str] | bool"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check."""

    name: str
    ok: bool
    detail: str = ""


class HealthChecks:
    """Named readiness checks (liveness is simply "the process answers")."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}

    def add(self, name: str, check: Check) -> None:
        """Register ``check`` under ``name`` (replacing one of the same name)."""
        self._checks[name] = check

    @property
    def names(self) -> list[str]:
        return list(self._checks)

    def run(self) -> list[CheckResult]:
        """Run every check; an exception is a failure whose (redacted) text is the detail."""
        out = []
        for name, check in self._checks.items():
            try:
                got = check()
                ok, detail = got if isinstance(got, tuple) else (bool(got), "")
            except Exception as exc:
                ok, detail = False, redact_text(f"{type(exc).__name__}: {exc}")
            out.append(CheckResult(name, bool(ok), str(detail)))
        return out


class FeedWatch:
    """Feed staleness: wall-clock seconds since the last ``BarReceived`` on a bus.

    Parameters
    ----------
    max_age
        Seconds without a bar after which the feed counts as stale.
    """

    def __init__(self, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age, self._clock = max_age, clock
        self.last: float | None = None
        self.started = clock()

    def attach(self, bus: Any) -> None:
        from tradelab.events import BarReceived

        bus.subscribe(BarReceived, self.seen)

    def seen(self, _event: Any = None) -> None:
        self.last = self._clock()

    def __call__(self) -> tuple[bool, str]:
        since = self.last if self.last is not None else self.started
        age = self._clock() - since
        what = "last bar" if self.last is not None else "start (no bar yet)"
        return age <= self.max_age, f"{age:.1f}s since {what}; limit {self.max_age:g}s"


def database_check(store: Store) -> Check:
    """Reachability of the store's database (``SELECT 1``)."""
    def check() -> tuple[bool, str]:
        with store.engine.connect() as conn:
            # Plain SQL on the store's own connection: no sqlalchemy import outside the store.
            conn.exec_driver_sql("SELECT 1")
        return True, "reachable"
    return check


def broker_check(broker: Broker) -> Check:
    """The broker's ``connected`` flag or ``is_connected()`` (a paper broker is always connected)."""
    def check() -> tuple[bool, str]:
        probe = getattr(broker, "is_connected", None)
        ok = probe() if callable(probe) else getattr(broker, "connected", True)
        return bool(ok), f"{type(broker).__name__} {'connected' if ok else 'disconnected'}"
    return check


class HealthMonitor:
    """Runs checks periodically and alerts through a notifier when one changes state.

    Parameters
    ----------
    checks
        The checks to run.
    notifier
        Anything with ``notify(event_type, context, severity=...)``; ``None`` only logs.
    interval
        Seconds between rounds.
    component
        Shown in alerts (e.g. ``"engine paper"`` or ``"scheduler"``).
    """

    def __init__(self, checks: HealthChecks, notifier: Any = None, interval: float = 30.0,
                 component: str = "tradelab") -> None:
        self.checks, self.notifier = checks, notifier
        self.interval, self.component = interval, component
        self.state: dict[str, bool] = {}
        self.last: list[CheckResult] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> list[CheckResult]:
        """One round: run, compare with the previous state, alert on changes."""
        results = self.checks.run()
        for r in results:
            before = self.state.get(r.name, True)  # first failure alerts; first success does not
            self.state[r.name] = r.ok
            if before != r.ok:
                log.warning("health_changed", check=r.name, ok=r.ok, detail=r.detail,
                            component=self.component)
                if self.notifier is not None:
                    self.notifier.notify(
                        "health_alert",
                        {"check": r.name, "ok": r.ok, "detail": r.detail,
                         "component": self.component, "at": datetime.now(UTC)},
                        severity="info" if r.ok else "error", reference=r.name)
        self.last = results
        return results

    def start(self) -> None:
        """Start the background thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="health-monitor", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # the monitor itself must not die
                log.error("health_round_failed", error=redact_text(f"{type(exc).__name__}: {exc}"))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
