"""A small per-process memo of indicator columns for parameter sweeps.

A sweep calls ``signals`` once per chunk of combinations (250 by default), and
every chunk recomputes its distinct windows on the same price series: the
10,000-combination SMA grid computed 2,100 moving averages where 200 are
distinct. Memoizing on the series' *content* (a 128-bit BLAKE2 digest of its
bytes, ~10 µs for 5,000 bars, not its address, which pandas may reuse after a
free) and the parameters returns the very array computed before, so results
are bit-identical and only the repeated work goes.

Bounded (least recently used entries go first), thread-safe (sweeps run chunks
on threads; two threads may compute the same entry once each, harmlessly), and
entries are read-only so a caller cannot alter what the next one gets.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np

#: Bytes of results kept (~1,600 columns of 5,000 bars).
MAX_BYTES = 64 * 2**20

_lock = threading.Lock()
_entries: OrderedDict[Hashable, tuple[np.ndarray, ...]] = OrderedDict()
_size = [0]


def digest(values: np.ndarray) -> bytes:
    """Content key of a series: dtype, shape and a BLAKE2b-128 digest of its bytes."""
    h = hashlib.blake2b(np.ascontiguousarray(values).data, digest_size=16)
    h.update(repr((values.dtype.str, values.shape)).encode())
    return h.digest()


def cached(key: Hashable, compute: Callable[[], tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """``compute()`` once per ``key`` while it stays in the memo."""
    with _lock:
        hit = _entries.get(key)
        if hit is not None:
            _entries.move_to_end(key)
            return hit
    out = tuple(np.asarray(a) for a in compute())
    for a in out:
        a.flags.writeable = False
    nbytes = sum(a.nbytes for a in out)
    if nbytes > MAX_BYTES // 4:  # one huge result would evict everything else
        return out
    with _lock:
        if key not in _entries:
            _entries[key] = out
            _size[0] += nbytes
        while _size[0] > MAX_BYTES and _entries:
            _, old = _entries.popitem(last=False)
            _size[0] -= sum(a.nbytes for a in old)
    return out


def clear() -> None:
    """Forget every entry (tests; or to release memory after a sweep)."""
    with _lock:
        _entries.clear()
        _size[0] = 0
