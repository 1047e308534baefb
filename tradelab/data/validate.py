"""Check bars against the contract and apply a policy: ``raise``, ``drop`` or ``fill``.

Problems are detected on the input as given and counted per kind (a row can
show several kinds). The policy then decides the output:

``raise``
    Any problem raises :class:`~tradelab.errors.DataValidationError` naming the
    source, symbol, each kind with its count and the first offending rows.
``drop``
    Rows with bad values are removed; then rows whose time stamp goes back in
    time are removed; then, of equal time stamps, the last row is kept.
``fill``
    Rows are sorted (stable) and, of equal time stamps, the last is kept; NaN or
    non-positive prices are taken from the previous close; NaN volume becomes 0
    (yfinance's convention); high/low are swapped when inverted and widened to
    contain open/close. A row that cannot be repaired (no previous close, or a
    negative volume, whose true value is unknowable) is dropped.

Gaps (bars further apart than ``gap_factor`` times the median interval) are
reported and never an error. Nothing is dropped or fixed without the returned
:class:`ValidationReport` saying so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from tradelab.data.bars import BAR_COLUMNS, PRICE_COLUMNS, to_utc_index
from tradelab.errors import DataValidationError

Policy = Literal["raise", "drop", "fill"]
POLICIES: tuple[str, ...] = ("raise", "drop", "fill")
# Order is the order of the report.
KINDS: tuple[str, ...] = (
    "nan", "non_positive", "negative_volume", "high_low", "open_close_range",
    "duplicate", "out_of_order",
)
KIND_LABELS: dict[str, str] = {
    "nan": "NaN/inf value", "non_positive": "price <= 0", "negative_volume": "volume < 0",
    "high_low": "high < low", "open_close_range": "open/close outside [low, high]",
    "duplicate": "duplicate timestamp", "out_of_order": "timestamp out of order",
}
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Row:
    """One offending input row: its time stamp and values."""

    time: pd.Timestamp
    values: Mapping[str, float]

    def __str__(self) -> str:
        vals = " ".join(f"{k}={v:g}" for k, v in self.values.items())
        return f"{self.time.isoformat()} {vals}"


@dataclass(frozen=True)
class Gap:
    """Two consecutive output bars further apart than the gap threshold."""

    before: pd.Timestamp
    after: pd.Timestamp

    @property
    def length(self) -> pd.Timedelta:
        return self.after - self.before

    def __str__(self) -> str:
        return f"{self.before.isoformat()} → {self.after.isoformat()} ({self.length})"


@dataclass(frozen=True)
class ValidationReport:
    """What validation found in one frame and what the policy did about it.

    Attributes
    ----------
    counts
        Problem kind → number of input rows showing it (all kinds in :data:`KINDS`).
    examples
        Problem kind → the first offending input rows (at most 5).
    rows_in, rows_out
        Row counts before and after the policy.
    dropped, fixed
        Input rows removed; output rows whose values were changed by ``fill``.
    gap_count, gaps
        Number of gaps in the output and the first few of them.
    """

    source: str
    symbol: str
    policy: str
    rows_in: int
    rows_out: int
    counts: Mapping[str, int]
    examples: Mapping[str, tuple[Row, ...]] = field(default_factory=dict)
    dropped: int = 0
    fixed: int = 0
    sorted: bool = False
    gap_count: int = 0
    gaps: tuple[Gap, ...] = ()
    gap_threshold: pd.Timedelta | None = None

    @property
    def ok(self) -> bool:
        """No contract problems in the input (gaps do not count)."""
        return self.issues == 0

    @property
    def issues(self) -> int:
        return sum(self.counts.values())

    def problems(self) -> dict[str, int]:
        """Only the kinds that occurred."""
        return {k: n for k, n in self.counts.items() if n}

    def summary(self) -> str:
        """One line: kinds with counts, or ``ok``."""
        found = ", ".join(f"{n} {KIND_LABELS[k]}" for k, n in self.problems().items())
        return found or "ok"

    def __str__(self) -> str:
        lines = [f"validation of {self.source}:{self.symbol} (policy {self.policy}): "
                 f"{self.rows_in} rows in, {self.rows_out} out; {self.summary()}"]
        for kind, n in self.problems().items():
            lines.append(f"  {KIND_LABELS[kind]} ({kind}): {n} row(s), first:")
            lines.extend(f"    {row}" for row in self.examples.get(kind, ()))
        if self.dropped or self.fixed or self.sorted:
            lines.append(f"  {self.dropped} row(s) dropped, {self.fixed} row(s) fixed"
                         + (", rows sorted by time" if self.sorted else ""))
        if self.gap_count:
            lines.append(f"  {self.gap_count} gap(s) longer than {self.gap_threshold}, first:")
            lines.extend(f"    {gap}" for gap in self.gaps)
        return "\n".join(lines)


def _coerce(df: pd.DataFrame, source: str, symbol: str) -> pd.DataFrame:
    """Contract columns as float64 on a UTC index; missing columns always raise."""
    missing = [c for c in BAR_COLUMNS if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"bars from {source}:{symbol} are missing column(s) {', '.join(missing)}; "
            f"columns are {[str(c) for c in df.columns]}")
    out = pd.DataFrame(
        {c: pd.to_numeric(df[c], errors="coerce").astype("float64") for c in BAR_COLUMNS},
        index=df.index)
    if not isinstance(out.index, pd.DatetimeIndex) or out.index.tz is None \
            or str(out.index.tz) != "UTC" or out.index.name != "time":
        try:
            out.index = to_utc_index(out.index)
        except (ValueError, TypeError) as exc:
            raise DataValidationError(
                f"bars from {source}:{symbol}: index is not time stamps ({exc})") from None
    return out


def _masks(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Kind → boolean array over the rows of ``df`` (in input order)."""
    values = df.to_numpy()
    prices = df[list(PRICE_COLUMNS)].to_numpy()
    o, h, lo, c, v = (df[col].to_numpy() for col in BAR_COLUMNS)
    with np.errstate(invalid="ignore"):
        lo_env, hi_env = np.fmin(h, lo), np.fmax(h, lo)
        out_of_range = (o < lo_env) | (o > hi_env) | (c < lo_env) | (c > hi_env)
        non_positive = (prices <= 0).any(axis=1)
    ts = df.index.asi8
    prev_max = np.maximum.accumulate(np.concatenate([[np.iinfo(np.int64).min], ts[:-1]]))
    return {
        "nan": ~np.isfinite(values).all(axis=1),
        "non_positive": non_positive,
        "negative_volume": v < 0,
        "high_low": h < lo,
        "open_close_range": out_of_range,
        # Every occurrence of a time stamp beyond the first counts once.
        "duplicate": df.index.duplicated(keep="first"),
        "out_of_order": ts < prev_max,
    }


def _row(df: pd.DataFrame, i: int) -> Row:
    return Row(df.index[i], {c: float(df.iat[i, j]) for j, c in enumerate(df.columns)})


def _drop(df: pd.DataFrame, masks: dict[str, np.ndarray]) -> pd.DataFrame:
    bad = np.zeros(len(df), dtype=bool)
    for kind in ("nan", "non_positive", "negative_volume", "high_low", "open_close_range"):
        bad |= masks[kind]
    kept = df[~bad]
    # Recomputed on the survivors so that a bad row never costs a good neighbour.
    ts = kept.index.asi8
    prev_max = np.maximum.accumulate(np.concatenate([[np.iinfo(np.int64).min], ts[:-1]]))
    kept = kept[ts >= prev_max]
    return kept[~kept.index.duplicated(keep="last")]


def _fill(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Repair what can be repaired; returns the frame and the number of fixed rows."""
    order = np.argsort(df.index.asi8, kind="stable")
    work = df.iloc[order]
    work = work[~work.index.duplicated(keep="last")]
    original = work.copy()
    prices = work[list(PRICE_COLUMNS)]
    bad_price = ~np.isfinite(prices) | (prices <= 0)
    close = work["close"].mask(bad_price["close"]).ffill()
    prev_close = close.shift(1)
    repaired = pd.DataFrame(index=work.index)
    for col in PRICE_COLUMNS:
        src = close if col == "close" else work[col]
        repaired[col] = src.mask(bad_price[col], prev_close)
    volume = work["volume"].replace([np.inf, -np.inf], np.nan)
    repaired["volume"] = volume.fillna(0.0)
    unrepairable = repaired[list(PRICE_COLUMNS)].isna().any(axis=1) | (repaired["volume"] < 0)
    repaired = repaired[~unrepairable]
    hi = repaired[["high", "low"]].max(axis=1)
    lo = repaired[["high", "low"]].min(axis=1)
    repaired["high"] = np.fmax(hi, repaired[["open", "close"]].max(axis=1))
    repaired["low"] = np.fmin(lo, repaired[["open", "close"]].min(axis=1))
    before = original.loc[repaired.index, list(BAR_COLUMNS)].to_numpy()
    after = repaired[list(BAR_COLUMNS)].to_numpy()
    # NaN != NaN, so a NaN that was filled counts as changed, as it should.
    changed = ~((before == after) | (np.isnan(before) & np.isnan(after))).all(axis=1)
    return repaired, int(changed.sum())


def find_gaps(index: pd.DatetimeIndex, gap_factor: float) -> tuple[int, list[Gap], Any]:
    """Consecutive stamps further apart than ``gap_factor`` × the median interval."""
    if len(index) < 3:
        return 0, [], None
    diffs = np.diff(index.asi8)
    threshold = float(np.median(diffs)) * gap_factor
    where = np.flatnonzero(diffs > threshold)
    gaps = [Gap(index[i], index[i + 1]) for i in where[:MAX_EXAMPLES]]
    return len(where), gaps, pd.Timedelta(int(threshold), unit=index.unit)


def validate_bars(df: pd.DataFrame, policy: Policy | str = "raise", *, source: str = "?",
                  symbol: str = "?", gap_factor: float = 5.0,
                  ) -> tuple[pd.DataFrame, ValidationReport]:
    """Check bars against the contract and apply ``policy``.

    Parameters
    ----------
    df
        Bars with (at least) ``open, high, low, close, volume`` and a time index.
        Extra columns are discarded; a non-UTC index is converted.
    policy
        ``"raise"``, ``"drop"`` or ``"fill"`` (see the module docstring).
    source, symbol
        Named in the report and in error messages.
    gap_factor
        A gap is reported when consecutive bars are more than this many median
        intervals apart.

    Returns
    -------
    (pandas.DataFrame, ValidationReport)
        Contract bars (a new frame) and what was found and done.

    Raises
    ------
    DataValidationError
        Columns are missing (under every policy), or the policy is ``raise`` and
        any problem was found; ``.report`` holds the :class:`ValidationReport`.
    """
    if policy not in POLICIES:
        raise ValueError(f"policy={policy!r}; expected one of {', '.join(POLICIES)}")
    data = _coerce(df, source, symbol)
    masks = _masks(data)
    counts = {k: int(masks[k].sum()) for k in KINDS}
    examples = {k: tuple(_row(data, int(i)) for i in np.flatnonzero(masks[k])[:MAX_EXAMPLES])
                for k in KINDS if counts[k]}
    fixed = 0
    if policy == "raise" or not any(counts.values()):
        out = data
    elif policy == "drop":
        out = _drop(data, masks)
    else:
        out, fixed = _fill(data)
    gap_count, gaps, threshold = find_gaps(pd.DatetimeIndex(out.index), gap_factor)
    report = ValidationReport(
        source=source, symbol=symbol, policy=str(policy), rows_in=len(data), rows_out=len(out),
        counts=counts, examples=examples, dropped=len(data) - len(out), fixed=fixed,
        sorted=policy == "fill" and counts["out_of_order"] > 0,
        gap_count=gap_count, gaps=tuple(gaps), gap_threshold=threshold)
    if policy == "raise" and not report.ok:
        raise DataValidationError(
            f"bars from {source}:{symbol} break the contract ({report.summary()}); "
            f"use policy 'drop' or 'fill' to accept them repaired\n{report}", report)
    # Marks such as the sample source's ``close_only`` describe the data, not its rows.
    out.attrs.update(df.attrs)
    return out, report


def contract_problems(df: pd.DataFrame) -> list[str]:
    """Ways ``df`` breaks the bar contract (empty list: it satisfies it).

    Useful in tests and assertions; unlike :func:`validate_bars` nothing is coerced.
    """
    problems: list[str] = []
    if tuple(df.columns) != BAR_COLUMNS:
        problems.append(f"columns {list(df.columns)} != {list(BAR_COLUMNS)}")
        return problems
    idx = df.index
    if not isinstance(idx, pd.DatetimeIndex) or str(idx.tz) != "UTC":
        problems.append(f"index is {type(idx).__name__} tz={getattr(idx, 'tz', None)}, not UTC")
        return problems
    if idx.name != "time":
        problems.append(f"index name {idx.name!r} != 'time'")
    if not (idx.is_monotonic_increasing and idx.is_unique):
        problems.append("index not strictly increasing")
    if any(str(t) != "float64" for t in df.dtypes):
        problems.append(f"dtypes {dict(df.dtypes.astype(str))} not all float64")
        return problems
    masks = _masks(df)
    for kind in KINDS[:5]:
        if masks[kind].any():
            problems.append(f"{int(masks[kind].sum())} row(s) with {KIND_LABELS[kind]}")
    return problems
