"""Writes and reads of reconciliations with a venue (``reconciliations``).

One row per comparison of the book (or the store) with a venue: when, which
venue, what triggered it (``start``, ``periodic``, ``manual``), whether it ended
in agreement (``ok``), whether the venue's state was adopted, how many missed
fills were booked, and the findings as a JSON list of plain dicts. Like the rest
of the store this speaks primitives and returns frozen records; times are
always passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select

from tradelab.store import models as m
from tradelab.store.errors import UnknownAccountError
from tradelab.store.reads import check_choice
from tradelab.store.types import to_utc

REC = cast(Table, m.Reconciliation.__table__)
ACCOUNTS = cast(Table, m.Account.__table__)
#: The keys of one stored finding (values are strings or ``None``).
FINDING_KEYS = ("kind", "symbol", "client_order_id", "store", "venue", "detail")


@dataclass(frozen=True, slots=True)
class ReconciliationRecord:
    """One stored reconciliation (see :class:`tradelab.store.models.Reconciliation`)."""

    id: int
    account: str
    run_id: int | None
    venue: str
    trigger: str
    at: datetime
    ok: bool
    adopted: bool
    booked_fills: int
    findings: list[dict[str, Any]]


def _finding(row: Mapping[str, Any]) -> dict[str, Any]:
    # Plain strings only: the column is JSON and readers should not meet Decimals.
    return {k: (None if row.get(k) is None else str(row.get(k))) for k in FINDING_KEYS}


class ReconcileRepo:
    """Reconciliation persistence on a :class:`tradelab.store.Store` (schema at head)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def record_reconciliation(self, account: str, *, venue: str, trigger: str, at: datetime,
                              ok: bool, adopted: bool = False, booked_fills: int = 0,
                              findings: Iterable[Mapping[str, Any]] = (),
                              run_id: int | None = None) -> int:
        """Store one reconciliation of ``account``; returns its row id.

        Parameters
        ----------
        account
            The account's name (it must exist).
        venue, trigger, at, ok, adopted, booked_fills
            As in :class:`ReconciliationRecord`; ``trigger`` is one of
            ``start``, ``periodic``, ``manual``.
        findings
            Mappings with the keys of :data:`FINDING_KEYS` (missing keys are ``None``).
        run_id
            The engine run that reconciled, or ``None`` (a command).

        Raises
        ------
        UnknownAccountError
            If the account does not exist.
        ValueError
            If ``trigger`` is not a known trigger.
        """
        values = {
            "run_id": run_id, "venue": str(venue)[:64],
            "trigger": check_choice("trigger", trigger, m.RECONCILE_TRIGGERS),
            "at": to_utc(at), "ok": bool(ok), "adopted": bool(adopted),
            "booked_fills": int(booked_fills), "findings": [_finding(f) for f in findings],
        }
        # The store's write engine starts SQLite transactions with BEGIN IMMEDIATE.
        with self.store._write.begin() as conn:
            account_id = conn.execute(select(ACCOUNTS.c.id).where(ACCOUNTS.c.name == account)).scalar()
            if account_id is None:
                raise UnknownAccountError(f"unknown account {account!r}; nothing to reconcile into")
            return int(conn.execute(insert(REC).values(account_id=account_id, **values)
                                    .returning(REC.c.id)).scalar_one())

    def reconciliations(self, account: str, limit: int | None = 20) -> list[ReconciliationRecord]:
        """The account's reconciliations, newest first (at most ``limit``; ``None``: all).

        An unknown account has none.
        """
        q = (select(REC.c.id, ACCOUNTS.c.name.label("account"), REC.c.run_id, REC.c.venue,
                    REC.c.trigger, REC.c.at, REC.c.ok, REC.c.adopted, REC.c.booked_fills,
                    REC.c.findings)
             .join(ACCOUNTS, ACCOUNTS.c.id == REC.c.account_id)
             .where(ACCOUNTS.c.name == account)
             .order_by(REC.c.at.desc(), REC.c.id.desc()))
        if limit is not None:
            q = q.limit(max(int(limit), 0))
        with self.store.engine.connect() as conn:
            return [ReconciliationRecord(**{**r._mapping, "ok": bool(r.ok), "adopted": bool(r.adopted),
                                            "findings": list(r.findings or [])})
                    for r in conn.execute(q)]


__all__ = ["FINDING_KEYS", "ReconcileRepo", "ReconciliationRecord"]
