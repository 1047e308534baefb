"""L3: a Redis tier shared by processes and machines, that never takes the cache down.

Entries are pickled ``(tags, value)`` under ``<prefix>e:<key>`` with the TTL as
Redis expiry; each tag is a set ``<prefix>t:<tag>`` of entry keys (expiring with
the longest-lived entry it names). Invalidation deletes a tag's entries and the
set in one transaction.

Redis is optional infrastructure: when it is down or slow, every call degrades to
a miss (reads) or a no-op (writes), is counted in :meth:`RedisCache.stats`, and is
logged once per outage, not once per call. After a failure the tier is skipped for
``retry_after`` seconds (a circuit breaker), so a dead server costs one short
socket timeout per window instead of one per lookup. The tiers above it (memory,
disk) keep serving.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Iterable
from typing import Any, cast

import structlog

log = structlog.get_logger("tradelab.cache")


class RedisCache:
    """A :class:`~tradelab.cache.tiered.CacheLevel` on a Redis server.

    Parameters
    ----------
    url
        ``redis://[:password@]host:port/db`` (never logged with its password).
    ttl
        Default time to live in seconds.
    prefix
        Namespace for this cache's keys (several projects can share a server).
    timeout
        Socket connect/read timeout in seconds; keep it short, a cache must not stall.
    retry_after
        Seconds to skip Redis after a failure before trying again.
    client
        An existing ``redis.Redis`` (tests); built from ``url`` otherwise.
    """

    name = "redis"

    def __init__(self, url: str, ttl: float = 7 * 24 * 3600.0, *, prefix: str = "tradelab:",
                 timeout: float = 0.5, retry_after: float = 5.0, client: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        import redis

        self.ttl, self.prefix, self.retry_after, self._clock = ttl, prefix, retry_after, clock
        self._redis = client or redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._errors_t = (redis.RedisError, OSError)
        self._down_until = 0.0
        self._outage = False
        self.hits = self.misses = self.errors = self.skipped = 0

    def __repr__(self) -> str:
        kw = self._redis.connection_pool.connection_kwargs
        return f"RedisCache({kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)})"

    # -- failure handling ---------------------------------------------------------
    def _call(self, fn: Callable[[], Any], default: Any) -> Any:
        now = self._clock()
        if now < self._down_until:
            self.skipped += 1
            return default
        try:
            result = fn()
        except self._errors_t as exc:
            self.errors += 1
            self._down_until = now + self.retry_after
            if not self._outage:
                self._outage = True
                log.warning("redis cache unavailable; serving from the other tiers",
                            cache=repr(self), error=type(exc).__name__, retry_after=self.retry_after)
            return default
        if self._outage:
            self._outage = False
            log.info("redis cache available again", cache=repr(self))
        return result

    @property
    def available(self) -> bool:
        """Whether the last call reached Redis (``False`` during an outage window)."""
        return not self._outage

    def _e(self, key: str) -> str:
        return f"{self.prefix}e:{key}"

    def _t(self, tag: str) -> str:
        return f"{self.prefix}t:{tag}"

    # -- the cache protocol ------------------------------------------------------------
    def get_with_tags(self, key: str) -> tuple[Any, frozenset[str]] | None:
        raw = self._call(lambda: self._redis.get(self._e(key)), None)
        if raw is None:
            self.misses += 1
            return None
        try:
            tags, value = pickle.loads(raw)
        except Exception:  # written by another version: a miss, and drop it
            self._call(lambda: self._redis.delete(self._e(key)), 0)
            self.misses += 1
            return None
        self.hits += 1
        return value, frozenset(tags)

    def get(self, key: str) -> Any | None:
        found = self.get_with_tags(key)
        return None if found is None else found[0]

    def set(self, key: str, value: Any, *, ttl: float | None = None,
            tags: Iterable[str] = ()) -> None:
        tags = frozenset(tags)
        expire = max(round(ttl if ttl is not None else self.ttl), 1)
        payload = pickle.dumps((tuple(sorted(tags)), value), protocol=pickle.HIGHEST_PROTOCOL)

        def write() -> None:
            pipe = self._redis.pipeline(transaction=True)
            pipe.set(self._e(key), payload, ex=expire)
            for tag in tags:
                pipe.sadd(self._t(tag), key)
                # GT: a tag set lives as long as its longest-lived entry.
                pipe.expire(self._t(tag), expire, gt=True)
                pipe.expire(self._t(tag), expire, nx=True)
            pipe.execute()

        self._call(write, None)

    def invalidate(self, tag: str) -> int:
        def drop() -> int:
            # redis-py types every command of its sync client as ``Awaitable[T] | T`` (one
            # signature for sync and asyncio clients); this client is sync.
            members = cast("set[bytes]", self._redis.smembers(self._t(tag)))
            keys = [k.decode() for k in members]
            pipe = self._redis.pipeline(transaction=True)
            for k in keys:
                pipe.delete(self._e(k))
            pipe.delete(self._t(tag))
            removed = pipe.execute()
            return int(sum(removed[:-1]))

        return int(self._call(drop, 0))

    def clear(self) -> int:
        def drop() -> int:
            n = 0
            for pattern, count in ((f"{self.prefix}e:*", True), (f"{self.prefix}t:*", False)):
                batch = list(self._redis.scan_iter(match=pattern, count=500))
                if batch:
                    deleted = cast(int, self._redis.delete(*batch))  # sync client: see invalidate
                    n += deleted if count else 0
            return n

        return int(self._call(drop, 0))

    def stats(self) -> dict[str, Any]:
        lookups = self.hits + self.misses
        size = self._call(lambda: sum(1 for _ in self._redis.scan_iter(
            match=f"{self.prefix}e:*", count=500)), None)
        out = {"name": self.name, "hits": self.hits, "misses": self.misses,
               "errors": self.errors, "skipped": self.skipped, "available": self.available,
               "hit_ratio": self.hits / lookups if lookups else 0.0}
        if size is not None:  # unknown while Redis is down
            out["size"] = size
        return out
