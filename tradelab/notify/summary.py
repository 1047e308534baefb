"""The daily summary of an account, computed from the store (the ``daily_summary`` template)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tradelab.store import Store


def daily_summary(store: Store, account: str, day: date) -> dict[str, Any]:
    """Equity, cash, the day's P&L, fills and risk events of ``account`` on ``day`` (UTC).

    Day P&L is the last equity snapshot of the day minus the last one before it (or
    the account's initial cash when the day is its first), so it includes fees and
    marks, exactly as the engine booked them.

    Raises
    ------
    KeyError
        When the account does not exist.
    """
    acct = store.get_account(account)
    if acct is None:
        raise KeyError(f"account {account!r} not found")
    start = datetime.combine(day, time.min, tzinfo=UTC)
    end = start + timedelta(days=1)
    curve = store.equity_curve(account)
    before = [p for p in curve if p.at < start]
    during = [p for p in curve if start <= p.at < end]
    opening = before[-1].equity if before else Decimal(acct.initial_cash)
    last = during[-1] if during else (before[-1] if before else None)
    equity = last.equity if last is not None else Decimal(acct.cash)
    cash = last.cash if last is not None else Decimal(acct.cash)
    return {
        "account": account,
        "day": day.isoformat(),
        "equity": equity,
        "cash": cash,
        "day_pnl": equity - opening if during else Decimal(0),
        "fills": sum(1 for f in store.fills(account) if start <= f.at < end),
        "risk_events": sum(1 for r in store.risk_events(account) if start <= r.at < end),
        "kill_switch_engaged": bool(store.kill_switch(account).engaged),
    }
