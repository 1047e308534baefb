"""Schema of data-quality outcomes (see :mod:`tradelab.data.quality`).

One row per (source, symbol, kind, reason) and flush: ``count`` is how many
occurrences happened since the previous row for the same key, so the sum of
``count`` over a run's rows of one kind and reason is the run's total. A
``breach`` row names the threshold in ``reason``, carries the observed value
(rounded down) in ``count`` and the full explanation in ``detail``.

Registered on the shared :class:`~tradelab.store.models.Base` metadata, so
one ``alembic upgrade head`` creates it and the "models == migrations" check
covers it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tradelab.store.models import Base, _one_of

QUALITY_KINDS = ("rejected", "dropped", "repaired", "gap", "stale", "breach")


class DataQualityEvent(Base):
    """Validation outcomes of one source/symbol: rows or messages rejected, gaps, staleness."""

    __tablename__ = "data_quality_events"
    __table_args__ = (
        _one_of("kind", QUALITY_KINDS),
        Index("ix_data_quality_events_run_at", "run_id", "at"),
        Index("ix_data_quality_events_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Both optional: a run that refused to start has no run row (and maybe no account).
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    source: Mapped[str] = mapped_column(String(100))
    symbol: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(100))
    count: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(String(2000))
    at: Mapped[datetime]
