"""Schema for the account-wide risk view that several engine processes share.

When several engines (separate jobs, separate strategies) trade one account,
each keeps its own positions in memory, but the limits that belong to the
*account* (gross exposure, daily loss, drawdown, the kill switch) must be
judged on what all of them hold together. The store is where they meet:

* ``marks``: the last price any engine saw per account and symbol, so one
  engine can value positions and open orders in symbols it does not trade;
* ``account_risk``: the account's running peak equity, the equity it started
  the trading day with and its latest equity, which a drawdown or daily-loss
  rule needs and which no single engine can know alone;
* ``close_requests``: an operator's request that one run close one position
  (the dashboard's "Close"), which that run's engine acts on once at its next
  store poll (see :mod:`tradelab.store.close_repo`).

Both are only read and written with the account row locked (see
:mod:`tradelab.store.shared_repo`).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tradelab.store.models import Base, _one_of

#: pending: not acted on yet; done: a closing order was sent; nothing: nothing was held.
CLOSE_STATUSES = ("pending", "done", "nothing")


class Mark(Base):
    """The latest price seen for a symbol traded on an account."""

    __tablename__ = "marks"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    price: Mapped[Decimal]
    at: Mapped[datetime]


class AccountRisk(Base):
    """Account-wide risk state: peak equity, the trading day's opening equity, the last equity.

    ``day_start_equity`` is the last equity seen before the day began (the
    previous close), so a day's loss includes its first bar's move.
    """

    __tablename__ = "account_risk"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    day: Mapped[str] = mapped_column(String(10))  # ISO date of the trading day (UTC)
    day_start_equity: Mapped[Decimal]
    peak_equity: Mapped[Decimal]
    last_equity: Mapped[Decimal]
    at: Mapped[datetime]


class CloseRequest(Base):
    """An operator's request that run ``run_id`` close its position in ``symbol``."""

    __tablename__ = "close_requests"
    __table_args__ = (_one_of("status", CLOSE_STATUSES),
                      Index("ix_close_requests_run_id_status", "run_id", "status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    symbol: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    #: The closing order's client id (``done``), so a fill can be traced to the request.
    client_order_id: Mapped[str | None] = mapped_column(String(64))
