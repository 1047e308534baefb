"""Store records as pandas DataFrames, for notebooks and reports.

The store returns frozen dataclasses (:class:`~tradelab.store.records.EquityPoint`,
``OrderRecord``, ``RiskEventRecord`` ...) holding money and quantities as
``Decimal``. A notebook wants a DataFrame; building one by hand with
``asdict`` leaves ``object`` columns of Decimals that plot and aggregate badly,
and it would copy every field, secrets included. :func:`records_frame` does it
once: one column per field, Decimal columns as float (or kept exact), secret
fields (``password_hash``, ``totp_secret``...) left out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pandas as pd

from tradelab.config import is_secret_name

__all__ = ["records_frame"]


def _fields(cls: type) -> list[str]:
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"records_frame: {cls.__name__} is not a dataclass record")
    return [f.name for f in dataclasses.fields(cls) if not is_secret_name(f.name)]


def records_frame(records: Iterable[Any], index: str | None = None, *, exact: bool = False,
                  record_type: type | None = None) -> pd.DataFrame:
    """A DataFrame with one row per record and one column per (non-secret) field.

    Parameters
    ----------
    records
        Dataclass instances of one type, e.g. ``store.equity_curve(account, run_id)``.
    index
        A field to index the frame by (e.g. ``"at"``); it must be a field of the records.
    exact
        Keep ``Decimal`` columns as Decimals (exact, ``object`` dtype) instead of float.
    record_type
        The record class, so that an empty ``records`` still gives the right columns.

    Returns
    -------
    pandas.DataFrame
        Columns in field order; fields whose name denotes a secret are left out.

    Raises
    ------
    TypeError
        A record is not a dataclass instance, or records of different types are mixed.
    ValueError
        ``index`` is not a field of the records.
    """
    rows = list(records)
    cls = record_type or (type(rows[0]) if rows else None)
    if cls is None:
        raise TypeError("records_frame: no records and no record_type: the columns are unknown")
    columns = _fields(cls)
    for r in rows:
        if type(r) is not cls:
            raise TypeError(f"records_frame: a {type(r).__name__} among {cls.__name__} records")
    if index is not None and index not in columns:
        raise ValueError(f"records_frame: index {index!r} is not a field of {cls.__name__} "
                         f"(fields: {', '.join(columns)})")
    frame = pd.DataFrame([[getattr(r, c) for c in columns] for r in rows], columns=columns)
    if not exact:
        for c in columns:
            values = frame[c].dropna()
            # A Decimal column (money, quantities) becomes float; None stays NaN.
            if len(values) and all(isinstance(v, Decimal) for v in values):
                frame[c] = frame[c].astype(float)
    return frame.set_index(index) if index is not None else frame
