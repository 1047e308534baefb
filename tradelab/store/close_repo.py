"""Close requests: an operator asks one engine run to close one of its positions.

The dashboard's "Close" writes a ``pending`` row (:func:`request_close`); the
run's engine reads its pending rows on the periodic store poll it also re-reads
the kill switch on (:func:`pending_closes`), sends one closing market order at
the bar of that symbol, and marks the row ``done`` with the order's client id
(or ``nothing`` when it held nothing): :func:`finish_close`. The row is the
durable part: a request made while the engine is down is acted on after it
resumes, and one already acted on is never acted on again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select, update

from tradelab.store import shared_models as sm
from tradelab.store.errors import StoreError
from tradelab.store.models import Account, Run
from tradelab.store.reads import check_choice
from tradelab.store.types import to_utc

CR = cast(Table, sm.CloseRequest.__table__)
_A = cast(Table, Account.__table__)
_R = cast(Table, Run.__table__)


@dataclass(frozen=True, slots=True)
class CloseRequestRecord:
    """One stored close request (see :class:`tradelab.store.shared_models.CloseRequest`)."""

    id: int
    account: str
    run_id: int
    symbol: str
    status: str
    requested_by: str
    requested_at: datetime
    done_at: datetime | None
    client_order_id: str | None


def _select() -> Any:
    return select(CR.c.id, _A.c.name.label("account"), CR.c.run_id, CR.c.symbol, CR.c.status,
                  CR.c.requested_by, CR.c.requested_at, CR.c.done_at,
                  CR.c.client_order_id).join(_A, _A.c.id == CR.c.account_id)


def request_close(store: Any, account: str, run_id: int, symbol: str, by: str,
                  at: datetime) -> int:
    """Ask run ``run_id`` of ``account`` to close its ``symbol`` position; the request's id.

    A pending request for the same run and symbol is reused (a second click does not
    close twice).

    Raises
    ------
    StoreError
        If ``run_id`` is not a run of ``account``, or ``symbol`` is empty.
    """
    if not symbol or not symbol.strip():
        raise StoreError(f"symbol = {symbol!r}: a close request needs a symbol")
    with store._write.begin() as conn:
        row = conn.execute(select(_R.c.account_id).join(_A, _A.c.id == _R.c.account_id)
                           .where(_R.c.id == run_id, _A.c.name == account)).one_or_none()
        if row is None:
            raise StoreError(f"run_id = {run_id!r}: not a run of account {account!r}")
        existing = conn.execute(select(CR.c.id).where(
            CR.c.run_id == run_id, CR.c.symbol == symbol, CR.c.status == "pending")).scalar()
        if existing is not None:
            return int(existing)
        result = conn.execute(insert(CR).values(
            account_id=row.account_id, run_id=run_id, symbol=symbol, status="pending",
            requested_by=by, requested_at=to_utc(at)))
        return int(result.inserted_primary_key[0])


def pending_closes(store: Any, run_id: int) -> list[CloseRequestRecord]:
    """Run ``run_id``'s requests not acted on yet, oldest first."""
    q = _select().where(CR.c.run_id == run_id, CR.c.status == "pending").order_by(CR.c.id)
    with store.engine.connect() as conn:
        return [CloseRequestRecord(**r._mapping) for r in conn.execute(q)]


def close_requests(store: Any, account: str, run_id: int | None = None
                   ) -> list[CloseRequestRecord]:
    """An account's close requests (of one run, or all), oldest first."""
    q = _select().where(_A.c.name == account)
    if run_id is not None:
        q = q.where(CR.c.run_id == run_id)
    with store.engine.connect() as conn:
        return [CloseRequestRecord(**r._mapping) for r in conn.execute(q.order_by(CR.c.id))]


def finish_close(store: Any, request_id: int, status: str, client_order_id: str | None,
                 at: datetime) -> bool:
    """Mark a pending request ``done`` (with its order's client id) or ``nothing``;
    whether it was still pending."""
    check_choice("status", status, [s for s in sm.CLOSE_STATUSES if s != "pending"])
    stmt = (update(CR).where(CR.c.id == request_id, CR.c.status == "pending")
            .values(status=status, client_order_id=client_order_id, done_at=to_utc(at)))
    with store._write.begin() as conn:
        return bool(conn.execute(stmt).rowcount)


__all__ = ["CloseRequestRecord", "close_requests", "finish_close", "pending_closes",
           "request_close"]


class CloseRepo:
    """The close requests of one store, as the engine and the API reach them
    (``store.closes``): the engine never imports store modules itself."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def request(self, account: str, run_id: int, symbol: str, by: str, at: datetime) -> int:
        """See :func:`request_close`."""
        return request_close(self._store, account, run_id, symbol, by, at)

    def pending(self, run_id: int) -> list[CloseRequestRecord]:
        """See :func:`pending_closes`."""
        return pending_closes(self._store, run_id)

    def finish(self, request_id: int, status: str, client_order_id: str | None,
               at: datetime) -> bool:
        """See :func:`finish_close`."""
        return finish_close(self._store, request_id, status, client_order_id, at)
