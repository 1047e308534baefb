"""Caches for bars: memory (L1) → diskcache (L2) → Redis (L3, later), with tags and stats.

Every level implements :class:`tradelab.interfaces.Cache` plus
:meth:`get_with_tags`, which :class:`~tradelab.cache.tiered.TieredCache` needs to
promote an entry upward without losing the tags that invalidate it.
"""
