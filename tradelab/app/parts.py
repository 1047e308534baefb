"""Settings → parts: cache tiers, data sources, strategy registry, store, risk limits."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from tradelab.config import Settings
from tradelab.strategy.registry import StrategyRegistry


def build_cache(settings: Settings) -> Any:
    """Memory → diskcache → Redis (``[cache]``), as one :class:`TieredCache`."""
    from tradelab.cache.disk import DiskCache
    from tradelab.cache.memory import MemoryCache
    from tradelab.cache.tiered import TieredCache

    c = settings.cache
    if not c.enabled:
        return TieredCache([])
    levels: list[Any] = [
        MemoryCache(max_items=c.memory_max_items, ttl=c.memory_ttl),
        DiskCache(settings.path(c.dir), ttl=c.disk_ttl, size_limit=c.disk_size_limit),
    ]
    if c.redis_url:
        from tradelab.cache.redis_cache import RedisCache

        levels.append(RedisCache(c.redis_url, ttl=c.redis_ttl, prefix=c.redis_prefix))
    return TieredCache(levels)


def build_sources(settings: Settings) -> dict[str, Any]:
    """The named data sources of ``[data]``."""
    from tradelab.data.ccxt_source import CcxtSource
    from tradelab.data.files import FileSource
    from tradelab.data.sample import SampleSource
    from tradelab.data.yahoo import YFinanceSource

    d = settings.data
    return {
        "sample": SampleSource(),
        "file": FileSource(settings.path(d.file.root), adjust=d.file.adjust),
        "yfinance": YFinanceSource(adjust=d.yfinance.adjust, timeout=d.yfinance.timeout),
        "ccxt": CcxtSource(exchange=d.ccxt.exchange, api_key=d.ccxt.api_key,
                           secret=d.ccxt.secret, timeout_ms=d.ccxt.timeout_ms,
                           page_limit=d.ccxt.page_limit, base_url=d.ccxt.base_url),
    }


def build_registry(settings: Settings) -> StrategyRegistry:
    """Strategies from ``[strategies] paths`` and entry points."""
    return StrategyRegistry.from_settings(settings)


def build_store(settings: Settings, override: str | None = None) -> Any:
    """The store at ``[store] url`` (or ``override``), migrated to head."""
    from tradelab.store import open_store

    return open_store(settings, override)


def risk_limits(settings: Settings) -> tuple[Any, dict[str, Any]]:
    """``[risk]`` as :class:`tradelab.risk.rules.RiskLimits`: account-wide and per strategy."""
    from tradelab.risk.rules import RiskLimits

    names = [f.name for f in fields(RiskLimits)]
    account = RiskLimits(**{n: getattr(settings.risk, n) for n in names})
    per = {name: RiskLimits(**{n: getattr(lim, n) for n in names})
           for name, lim in settings.risk.per_strategy.items()}
    return account, per
