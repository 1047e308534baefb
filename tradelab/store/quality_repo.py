"""Writes and reads of data-quality outcomes (``data_quality_events``).

Like the rest of the store this speaks primitives and returns frozen records;
times are always passed in. Writers batch: :meth:`QualityRepo.record` inserts
any number of rows in one transaction (one ``executemany``), which is how the
data-quality gate flushes its aggregated counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, insert, select

from tradelab.store import quality_models as qm
from tradelab.store.models import Account
from tradelab.store.reads import check_choice
from tradelab.store.types import to_utc

DQ = cast(Table, qm.DataQualityEvent.__table__)
ACCOUNTS = cast(Table, Account.__table__)


@dataclass(frozen=True, slots=True)
class QualityEventRecord:
    """One stored data-quality outcome (see :class:`tradelab.store.quality_models.DataQualityEvent`)."""

    id: int
    account_id: int | None
    run_id: int | None
    source: str
    symbol: str
    kind: str
    reason: str
    count: int
    detail: str | None
    at: datetime


def _clip(text: str | None, n: int) -> str | None:
    if text is None:
        return None
    return text if len(text) <= n else text[: n - 3] + "..."


class QualityRepo:
    """Data-quality persistence on a :class:`tradelab.store.Store` (schema at head)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def account_id(self, account: str) -> int | None:
        """The id of the account called ``account``, or ``None`` if it does not exist yet."""
        with self.store.engine.connect() as conn:
            return conn.execute(select(ACCOUNTS.c.id).where(ACCOUNTS.c.name == account)).scalar()

    def record(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert rows (keys: ``source, symbol, kind, reason, count, at`` and optionally
        ``detail, account_id, run_id``) in one transaction; returns how many."""
        values = [{
            "account_id": r.get("account_id"), "run_id": r.get("run_id"),
            "source": _clip(str(r["source"]), 100), "symbol": _clip(str(r["symbol"]), 64),
            "kind": check_choice("kind", r["kind"], qm.QUALITY_KINDS),
            "reason": _clip(str(r["reason"]), 100), "count": int(r["count"]),
            "detail": _clip(r.get("detail"), 2000), "at": to_utc(r["at"]),
        } for r in rows]
        if not values:
            return 0
        # The store's write engine starts SQLite transactions with BEGIN IMMEDIATE.
        with self.store._write.begin() as conn:
            conn.execute(insert(DQ), values)
        return len(values)

    def events(self, run_id: int | None = None, *, kind: str | None = None,
               limit: int | None = None) -> list[QualityEventRecord]:
        """Rows of one run (or of all runs), oldest first; ``limit`` keeps the newest ones."""
        q = select(DQ)
        if run_id is not None:
            q = q.where(DQ.c.run_id == run_id)
        if kind is not None:
            q = q.where(DQ.c.kind == check_choice("kind", kind, qm.QUALITY_KINDS))
        if limit is not None:
            q = q.order_by(DQ.c.at.desc(), DQ.c.id.desc()).limit(limit)
        else:
            q = q.order_by(DQ.c.at, DQ.c.id)
        with self.store.engine.connect() as conn:
            rows = [QualityEventRecord(**r._mapping) for r in conn.execute(q)]
        return sorted(rows, key=lambda r: (r.at, r.id)) if limit is not None else rows

    def totals(self, run_id: int | None = None, kind: str = "rejected") -> Counter[str]:
        """Reason → summed ``count`` of one kind (of one run, or all)."""
        q = select(DQ.c.reason, func.sum(DQ.c.count)).where(
            DQ.c.kind == check_choice("kind", kind, qm.QUALITY_KINDS)).group_by(DQ.c.reason)
        if run_id is not None:
            q = q.where(DQ.c.run_id == run_id)
        with self.store.engine.connect() as conn:
            return Counter({reason: int(n) for reason, n in conn.execute(q)})


__all__ = ["QualityEventRecord", "QualityRepo"]
