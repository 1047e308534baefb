"""Trading-aware cron: holidays, weekends and closed hours are skipped."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pytest

from tradelab.jobs.calendar import SessionCronTrigger, crontab_fields, is_trading_time


def _days(trigger: SessionCronTrigger, n: int, start: datetime) -> list[str]:
    return [f"{t:%Y-%m-%d %a %H:%M}" for t in trigger.next_fire_times(n, start)]


def test_christmas_and_the_weekend_are_skipped_on_xnys() -> None:
    trigger = SessionCronTrigger("35 16 * * *", "America/New_York", "XNYS")
    assert _days(trigger, 4, datetime(2026, 12, 23, tzinfo=UTC)) == [
        "2026-12-23 Wed 16:35", "2026-12-24 Thu 16:35", "2026-12-28 Mon 16:35", "2026-12-29 Tue 16:35"]


def test_without_a_calendar_every_cron_match_fires() -> None:
    trigger = SessionCronTrigger("35 16 * * *", "America/New_York", "")
    assert _days(trigger, 3, datetime(2026, 12, 24, 22, tzinfo=UTC)) == [
        "2026-12-25 Fri 16:35", "2026-12-26 Sat 16:35", "2026-12-27 Sun 16:35"]


def test_open_sessions_skip_closed_hours_including_the_early_close() -> None:
    trigger = SessionCronTrigger("0 * * * *", "UTC", "XNYS", sessions="open")
    # 24 Dec 2026 closes early (13:00 New York = 18:00 UTC); the 25th is a holiday.
    assert _days(trigger, 3, datetime(2026, 12, 24, 16, 30, tzinfo=UTC)) == [
        "2026-12-24 Thu 17:00", "2026-12-28 Mon 15:00", "2026-12-28 Mon 16:00"]


def test_is_trading_time() -> None:
    assert not is_trading_time("XNYS", datetime(2026, 12, 25, 15, tzinfo=UTC))   # holiday
    assert not is_trading_time("XNYS", datetime(2026, 12, 26, 15, tzinfo=UTC))   # Saturday
    assert is_trading_time("XNYS", datetime(2026, 12, 28, 15, tzinfo=UTC))
    assert not is_trading_time("XNYS", datetime(2026, 12, 28, 22, tzinfo=UTC), "open")
    with pytest.raises(ValueError, match="naive"):
        is_trading_time("XNYS", datetime(2026, 12, 28, 15))


def test_crontab_day_numbers_follow_crontab_not_apscheduler() -> None:
    assert crontab_fields("0 9 * * 1-5")["day_of_week"] == "mon-fri"
    assert crontab_fields("0 9 * * 0,7")["day_of_week"] == "sun,sun"
    assert crontab_fields("30 0 9 * * */2")["second"] == "30"
    sunday = SessionCronTrigger("0 9 * * 0", "UTC", "")
    assert _days(sunday, 1, datetime(2026, 12, 22, tzinfo=UTC)) == ["2026-12-27 Sun 09:00"]
    with pytest.raises(ValueError, match="5 fields"):
        crontab_fields("* * *")


def test_the_trigger_survives_the_job_store_pickle() -> None:
    trigger = SessionCronTrigger("35 16 * * mon-fri", "America/New_York", "XNYS")
    copy = pickle.loads(pickle.dumps(trigger))
    assert (copy.calendar, copy.sessions, str(copy)) == ("XNYS", "day", str(trigger))
    start = datetime(2026, 12, 24, 22, tzinfo=UTC)
    assert copy.next_fire_times(2, start) == trigger.next_fire_times(2, start)


def test_an_unknown_calendar_fails_when_configured() -> None:
    with pytest.raises(Exception, match="NOPE"):
        SessionCronTrigger("0 9 * * *", "UTC", "NOPE")
