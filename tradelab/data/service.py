"""The market-data service: every load goes source → validate → cache, keyed exactly.

A cache key holds everything that changes the result (source, symbol, interval,
start, end, adjustment, policy, gap factor and the source's data fingerprint),
so a changed file or setting can never be answered from a stale entry. Entries
are tagged ``source=<name>`` and ``symbol=<SYMBOL>`` for invalidation.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pandas as pd
import structlog

from tradelab.config import DataSettings
from tradelab.data.bars import utc
from tradelab.data.validate import POLICIES, ValidationReport, validate_bars
from tradelab.errors import DataSourceError
from tradelab.interfaces import Cache, DataSource

log = structlog.get_logger("tradelab.data")

KEY_VERSION = "bars/v1"  # bump when the cached value's layout changes


@dataclass(frozen=True)
class CachedBars:
    """What is cached per key: the validated bars and how they were validated."""

    bars: pd.DataFrame
    report: ValidationReport


def source_tag(source: str) -> str:
    """The invalidation tag of a source, e.g. ``source=file``."""
    return f"source={source}"


def symbol_tag(symbol: str) -> str:
    """The invalidation tag of a symbol, e.g. ``symbol=SPX`` (upper case)."""
    return f"symbol={symbol.upper()}"


def normalize_tag(tag: str) -> str:
    """``symbol=spx`` → ``symbol=SPX`` so user-typed tags match stored ones."""
    name, sep, value = tag.partition("=")
    return symbol_tag(value) if sep and name == "symbol" else tag


class MarketData:
    """Validated, cached bars from named sources.

    Parameters
    ----------
    sources
        Name → :class:`~tradelab.interfaces.DataSource`.
    cache
        Any :class:`~tradelab.interfaces.Cache` (usually a ``TieredCache``).
    settings
        Default source, validation policy per source and gap factor.

    Attributes
    ----------
    reports
        Cache key → the :class:`ValidationReport` of the bars last returned for it.
    """

    def __init__(self, sources: dict[str, DataSource], cache: Cache,
                 settings: DataSettings) -> None:
        self.sources = dict(sources)
        self.cache = cache
        self.settings = settings
        self.reports: dict[str, ValidationReport] = {}
        self.last_report: ValidationReport | None = None
        self._counts: Counter[str] = Counter()
        self._issues: Counter[str] = Counter()

    def source(self, name: str | None = None) -> DataSource:
        """The source called ``name`` (default: ``settings.default_source``).

        Raises
        ------
        DataSourceError
            Unknown name; the message lists the available sources.
        """
        name = name or self.settings.default_source
        try:
            return self.sources[name]
        except KeyError:
            raise DataSourceError(
                f"unknown data source {name!r}; available: {', '.join(sorted(self.sources))}"
            ) from None

    def key(self, symbol: str, *, source: str | None = None, start: Any = None,
            end: Any = None, interval: str = "1d", adjust: str | None = None,
            policy: str | None = None) -> str:
        """The cache key :meth:`load` would use (calls the source's ``fingerprint``)."""
        return self._resolve(symbol, source, start, end, interval, adjust, policy)[0]

    def _resolve(self, symbol: str, source: str | None, start: Any, end: Any, interval: str,
                 adjust: str | None, policy: str | None) -> tuple[str, dict[str, Any]]:
        name = source or self.settings.default_source
        src = self.source(name)
        policy = policy or self.settings.policy_for(name)
        if policy not in POLICIES:
            raise ValueError(f"policy={policy!r}; expected one of {', '.join(POLICIES)}")
        spec = {
            "source": name, "symbol": symbol, "interval": interval,
            "start": None if start is None else utc(start),
            "end": None if end is None else utc(end),
            "adjust": adjust or getattr(src, "adjust", "raw"),
            "policy": policy, "gap_factor": self.settings.gap_factor,
        }
        ident = {**spec, "start": _iso(spec["start"]), "end": _iso(spec["end"]),
                 "fingerprint": src.fingerprint(symbol)}
        return f"{KEY_VERSION}:{json.dumps(ident, sort_keys=True)}", spec

    def load(self, symbol: str, *, source: str | None = None, start: Any = None,
             end: Any = None, interval: str = "1d", adjust: str | None = None,
             policy: str | None = None) -> pd.DataFrame:
        """Contract bars for ``symbol``, from the cache when it has them.

        Parameters
        ----------
        symbol
            Source-specific symbol (``SPX``, a file name, ``BTC/USDT``...).
        source
            Source name; default ``settings.default_source``.
        start, end
            Inclusive bounds (anything ``pandas.Timestamp`` accepts; naive = UTC).
        interval
            Bar size, e.g. ``1d``, ``1h``, ``1m``.
        adjust
            ``raw`` or ``adjusted``; default the source's own default.
        policy
            Validation policy; default ``settings.policy_for(source)``.

        Returns
        -------
        pandas.DataFrame
            A fresh copy; callers may mutate it.

        Raises
        ------
        DataSourceError
            Unknown source, or the source failed.
        DataValidationError
            Under policy ``raise``, bars that break the contract.
        """
        key, spec = self._resolve(symbol, source, start, end, interval, adjust, policy)
        self._counts["loads"] += 1
        cached = self.cache.get(key)
        if isinstance(cached, CachedBars):
            self._counts["hits"] += 1
            self._remember(key, cached.report)
            return cached.bars.copy()
        self._counts["misses"] += 1
        src = self.sources[spec["source"]]
        raw = src.load(symbol, start=spec["start"], end=spec["end"], interval=interval,
                       adjust=spec["adjust"])
        try:
            bars, report = validate_bars(raw, spec["policy"], source=spec["source"],
                                         symbol=symbol, gap_factor=self.settings.gap_factor)
        except Exception as exc:
            rejected = getattr(exc, "report", None)
            if isinstance(rejected, ValidationReport):
                self._count_issues(rejected)
                self._remember(key, rejected)
                log.error("bars rejected", **_log_fields(rejected))
            raise
        self._count_issues(report)
        self._remember(key, report)
        if not report.ok:
            # Never silent: every load with dropped or repaired rows is logged in full.
            log.warning("bars validated with issues", report=str(report), **_log_fields(report))
        elif report.gap_count:
            log.info("bars loaded with gaps", report=str(report), **_log_fields(report))
        else:
            log.debug("bars loaded", **_log_fields(report))
        self.cache.set(key, CachedBars(bars, report),
                       tags=(source_tag(spec["source"]), symbol_tag(symbol)))
        return bars.copy()

    def _remember(self, key: str, report: ValidationReport) -> None:
        self.reports[key] = report
        self.last_report = report

    def _count_issues(self, report: ValidationReport) -> None:
        self._issues.update(report.problems())
        self._counts["rows_dropped"] += report.dropped
        self._counts["rows_fixed"] += report.fixed
        self._counts["gaps"] += report.gap_count

    def invalidate(self, *, source: str | None = None, symbol: str | None = None) -> int:
        """Drop cached bars of a source and/or a symbol; returns entries removed."""
        removed = 0
        if source is not None:
            removed += self.cache.invalidate(source_tag(source))
        if symbol is not None:
            removed += self.cache.invalidate(symbol_tag(symbol))
        return removed

    def stats(self) -> dict[str, Any]:
        """Loads, cache hits/misses, validation issues by kind, rows dropped/fixed, gaps."""
        return {"loads": self._counts["loads"], "hits": self._counts["hits"],
                "misses": self._counts["misses"], "issues": dict(self._issues),
                "rows_dropped": self._counts["rows_dropped"],
                "rows_fixed": self._counts["rows_fixed"], "gaps": self._counts["gaps"]}


def _iso(ts: pd.Timestamp | None) -> str | None:
    return None if ts is None else ts.isoformat()


def _log_fields(report: ValidationReport) -> dict[str, Any]:
    return {"source": report.source, "symbol": report.symbol, "policy": report.policy,
            "rows_in": report.rows_in, "rows_out": report.rows_out,
            "issues": report.problems(), "dropped": report.dropped, "fixed": report.fixed,
            "gaps": report.gap_count}
