"""A bar whose processing raised: the run halts, saying why, where and when.

An exception out of the code run for one bar (a strategy's ``signals``, a rule,
the portfolio, the paper broker's fill logic) is a bug or bad data, not a reason
to trade on: :meth:`tradelab.engine.loop.Engine.run` stops the feed, and
:func:`bar_failed` turns the exception into the run's halt reason,
``"<ExceptionType>: <message> (at bar <time>, <symbol>)"``. It is

* logged once, with the traceback (``engine_bar_failed``);
* published as a critical :class:`~tradelab.events.RiskAlert` (rule
  :data:`ENGINE_ERROR`): the store keeps it with the run's risk events, the
  notifier sends it and the metrics count it (``tradelab_risk_alerts_total``);
* the reason the run is marked ``failed`` with (``summary["stop_reason"]``), and the
  message of the :class:`~tradelab.errors.RunHalted` the engine raises, which the
  CLI prints as its one error line before exiting non-zero.

Orders decided before the failing bar were committed before they left (the
write-ahead step); the failing bar was not recorded as processed, so
``--resume`` replays it (with the same client order ids) once the cause is fixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from tradelab.bus import StepFailed
from tradelab.errors import RunHalted, StoreFailure
from tradelab.events import RiskAlert

if TYPE_CHECKING:
    from tradelab.engine.loop import Engine

log = structlog.get_logger("tradelab.engine")

#: The risk-event rule under which a failed bar is stored, notified and counted.
ENGINE_ERROR = "engine_error"

__all__ = ["ENGINE_ERROR", "bar_failed", "crashed", "where"]


def crashed(exc: BaseException) -> bool:
    """True for an unexpected error (a bug, bad data), as opposed to a halt the engine
    already handles (a failed durable write, a lost lease) or an interrupt."""
    return isinstance(exc, Exception) and not isinstance(exc, StepFailed | StoreFailure | RunHalted)


def where(bar: Any) -> str:
    """``"at bar <time>, <symbol>"`` for one bar, or for one time stamp's bars (a list)."""
    bars: Sequence[Any] = bar if isinstance(bar, list) else [bar]
    if not bars:
        return "before the first bar"
    t = bars[0][1]
    when = t.isoformat() if isinstance(t, datetime) else str(t)
    symbols = [str(b[0]) for b in bars]
    if len(symbols) > 3:  # a portfolio's time stamp: the first symbols and how many
        named = f"{', '.join(symbols[:3])}, ... ({len(symbols)} symbols)"
    else:
        named = ", ".join(symbols)
    return f"at bar {when}, {named}"


def bar_failed(engine: Engine, exc: BaseException, bar: Any) -> str:
    """The halt reason for ``exc`` raised while processing ``bar``; logs and alerts it."""
    first = str(exc).strip().splitlines()
    reason = f"{type(exc).__name__}: {first[0]}" if first else type(exc).__name__
    reason = f"{reason} ({where(bar)})"
    log.error("engine_bar_failed", run_id=engine.run_id, account=engine.account, reason=reason,
              exc_info=exc)
    names = ",".join(sorted({r.name for rs in engine.runners.values() for r in rs})) or None
    try:
        engine.bus.publish(RiskAlert(engine.clock.now(), engine.account, ENGINE_ERROR,
                                     f"run {engine.run_id} halted: {reason}", "critical", names,
                                     None))
    except StepFailed:  # the alert is best effort: the halt itself must not fail
        log.warning("engine_error_alert_failed", run_id=engine.run_id)
    return reason
