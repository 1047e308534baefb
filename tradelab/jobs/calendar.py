"""Trading-aware cron triggers: fire times on exchange holidays or closed sessions are skipped.

:class:`SessionCronTrigger` is an APScheduler ``CronTrigger`` that consults an
exchange calendar (``exchange-calendars``, e.g. ``XNYS``). It is pickled into
the database job store, so it stores only the calendar *code*; the calendar
object itself is built once per process and cached.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import pandas as pd
from apscheduler.triggers.cron import CronTrigger

MAX_SKIPS = 1000  # candidate fire times examined before giving up (a year of holidays is ~10)
_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


@lru_cache(maxsize=16)
def get_calendar(code: str) -> Any:
    """The exchange calendar ``code`` (cached; covers 2000 through two years ahead)."""
    import exchange_calendars as xcals

    end = pd.Timestamp.now(tz=UTC).year + 2
    return xcals.get_calendar(code, start="2000-01-03", end=f"{end}-12-31")


def is_trading_time(code: str, when: datetime, sessions: str = "day") -> bool:
    """Whether ``when`` is on a trading session (``"day"``) or within trading hours (``"open"``).

    Parameters
    ----------
    code
        Exchange calendar code, e.g. ``"XNYS"``.
    when
        A tz-aware time.
    sessions
        ``"day"``: the exchange's local date is a session (holidays and weekends
        are not). ``"open"``: the market is open at that minute.
    """
    cal = get_calendar(code)
    ts = pd.Timestamp(when)
    if ts.tzinfo is None:
        raise ValueError(f"is_trading_time({when!r}): naive datetime")
    if sessions == "open":
        minute = ts.tz_convert(UTC).floor("min")
        return bool(cal.is_open_on_minute(minute))
    local_day = ts.tz_convert(cal.tz).date()
    return bool(cal.is_session(pd.Timestamp(local_day)))


def _next_candidate(code: str, after: datetime, sessions: str) -> datetime:
    """Where to search next after a non-trading fire time (jumping, not stepping)."""
    cal = get_calendar(code)
    ts = pd.Timestamp(after)
    if sessions == "open":
        return cal.next_open(ts.tz_convert(UTC).floor("min")).to_pydatetime()
    local = ts.tz_convert(cal.tz)
    tomorrow = (local + pd.Timedelta(days=1)).normalize()
    return tomorrow.to_pydatetime()


def crontab_fields(expr: str) -> dict[str, str]:
    """Crontab text (5 fields, or 6 with seconds first) → CronTrigger keyword fields.

    Numeric days of the week follow crontab (0 or 7 = Sunday) and are turned
    into names, because APScheduler's own numbering starts at Monday.
    """
    parts = expr.split()
    if len(parts) not in (5, 6):
        raise ValueError(f"cron {expr!r}: expected 5 fields, or 6 with seconds first")
    second = parts[0] if len(parts) == 6 else "0"
    minute, hour, day, month, dow = parts[-5:]
    dow = re.sub(r"(?<![/\w])([0-7])(?!\w)", lambda m: _DOW_NAMES[int(m.group(1))], dow)
    return {"second": second, "minute": minute, "hour": hour, "day": day, "month": month,
            "day_of_week": dow}


class SessionCronTrigger(CronTrigger):
    """A cron trigger that skips fire times when the exchange is closed.

    Parameters
    ----------
    cron
        Crontab expression (5 fields, or 6 with seconds first).
    timezone
        Zone the cron fields are read in.
    calendar
        Exchange calendar code; empty fires every time the cron matches.
    sessions
        ``"day"`` or ``"open"`` (see :func:`is_trading_time`).
    """

    def __init__(self, cron: str, timezone: str = "UTC", calendar: str = "",
                 sessions: str = "day", **kwargs: Any) -> None:
        super().__init__(timezone=timezone, **crontab_fields(cron), **kwargs)
        if sessions not in ("day", "open"):
            raise ValueError(f"sessions = {sessions!r}: expected day or open")
        self.cron, self.calendar, self.sessions = cron, calendar, sessions
        if calendar:
            get_calendar(calendar)  # an unknown code fails here, at configuration time

    def get_next_fire_time(self, previous_fire_time: datetime | None,
                           now: datetime) -> datetime | None:
        t = super().get_next_fire_time(previous_fire_time, now)
        if not self.calendar:
            return t
        for _ in range(MAX_SKIPS):
            if t is None or is_trading_time(self.calendar, t, self.sessions):
                return t
            jump = _next_candidate(self.calendar, t, self.sessions)
            t = super().get_next_fire_time(None, max(jump, t + timedelta(microseconds=1)))
        return None

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.update(cron=self.cron, calendar=self.calendar, sessions=self.sessions)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.cron = state.pop("cron", "")
        self.calendar = state.pop("calendar", "")
        self.sessions = state.pop("sessions", "day")
        super().__setstate__(state)

    def __str__(self) -> str:
        where = f" on {self.calendar} {self.sessions}s" if self.calendar else ""
        return f"cron[{self.cron}] {self.timezone}{where}"

    def next_fire_times(self, n: int, start: datetime) -> list[datetime]:
        """The next ``n`` fire times from ``start`` (for ``jobs list`` and tests)."""
        out: list[datetime] = []
        prev: datetime | None = None
        now = start
        for _ in range(n):
            t = self.get_next_fire_time(prev, now)
            if t is None:
                break
            out.append(t)
            prev, now = t, t
        return out
