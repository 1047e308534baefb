"""Sweeps on a Dask cluster: chunks of combinations as tasks, bars through the cache.

:func:`tradelab.research.sweep.sweep` with ``cluster=`` sends each chunk of
combinations (of each symbol) to a Dask worker as one task that calls the same
per-chunk function as the local sweep (:func:`tradelab.research.walkforward.run_window`:
signals, simulation, metrics and the overfitting estimate's block sums, on the
whole series or a walk-forward window), so the table is identical. Workers import
``tradelab.research.simulate``, which installs the same disk-cached numba kernels as
the client.

How data reaches workers:

* bars given as a DataFrame are scattered to every worker once
  (``client.scatter(..., broadcast=True)``) and tasks receive the future;
* a :class:`BarsRef` is resolved on each worker with
  ``tradelab.app.build(settings).bars(...)``, memoized per worker process: the
  L2 disk cache on the same machine, the L3 Redis tier (``[cache] redis_url``)
  across machines. The client loads it first (so the cache is warm) and sends
  its content hash; a worker whose bars hash differently fails the task.

Strategy classes travel pickled by cloudpickle; those loaded from
``strategies/*.py`` (module ``tradelab_plugins.<stem>``, which workers cannot
import) are pickled by value. Failed chunks are resubmitted by the client up to
``retries`` times and reported in ``SweepResult.retried``.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import cloudpickle
import numpy as np
import pandas as pd

from tradelab.errors import TradelabError
from tradelab.research.walkforward import Window, run_window

if TYPE_CHECKING:  # pragma: no cover
    from tradelab.config import Settings
    from tradelab.research.conventions import Execution, TradeSpec
    from tradelab.strategy.base import Strategy

__all__ = ["BarsRef", "ChunkFailedError", "ChunkRetry", "bars_digest"]

_PLUGIN_PREFIX = "tradelab_plugins."
_MEMO_SIZE = 32  # bars frames kept per worker process (a few symbols per sweep)


@dataclass(frozen=True)
class BarsRef:
    """A reference to bars that a worker loads through the cache.

    Attributes mirror :meth:`tradelab.app.App.bars`; ``start``/``end`` are
    anything ``pandas.Timestamp`` accepts (hashable), ``adjust`` ``None`` for
    the source's default.
    """

    source: str
    symbol: str
    start: Any = None
    end: Any = None
    interval: str = "1d"
    adjust: str | None = None

    def load(self, app: Any) -> pd.DataFrame:
        """The bars from ``app`` (a :class:`tradelab.app.App`), through its cache."""
        return app.bars(self.symbol, source=self.source, start=self.start, end=self.end,
                        interval=self.interval, adjust=self.adjust)


@dataclass(frozen=True)
class ChunkRetry:
    """A chunk that failed at least once; ``errors`` lists each failed attempt."""

    symbol: str | None
    chunk: int
    first: dict[str, Any]
    attempts: int
    errors: tuple[str, ...]


class ChunkFailedError(TradelabError):
    """A chunk still failed after its last attempt."""


class BarsMismatchError(TradelabError):
    """A worker resolved a :class:`BarsRef` to other bars than the client did."""


def bars_digest(bars: pd.DataFrame) -> str:
    """SHA-256 of the bars' values, index and column names (16 hex digits)."""
    h = hashlib.sha256()
    h.update(repr(list(bars.columns)).encode())
    h.update(pd.util.hash_pandas_object(bars, index=True).to_numpy().tobytes())
    return h.hexdigest()[:16]


def resolve_inputs(bars: pd.DataFrame | BarsRef | Mapping[str, pd.DataFrame | BarsRef],
                   symbols: Sequence[str] | None, settings: Settings | None
                   ) -> tuple[dict[str | None, pd.DataFrame], dict[str | None, BarsRef]]:
    """Frames (loaded on the client, which warms the cache) and refs by symbol.

    A single DataFrame or BarsRef without ``symbols`` is keyed ``None`` (no
    ``symbol`` column); ``symbols`` turns a BarsRef into one ref per symbol.
    """
    if symbols is not None:
        if not isinstance(bars, BarsRef):
            raise TypeError("symbols= needs bars to be a BarsRef (the template of each symbol)")
        if not symbols or len(set(symbols)) != len(symbols):
            raise ValueError(f"symbols = {list(symbols)!r}: need distinct symbols")
        given: Mapping[str | None, Any] = {s: replace(bars, symbol=s) for s in symbols}
    elif isinstance(bars, Mapping):
        if not bars:
            raise ValueError("bars: empty mapping of symbols")
        given = {k: v for k, v in bars.items()}  # a copy, keyed str | None like the others
    else:
        given = {None: bars}
    refs = {k: v for k, v in given.items() if isinstance(v, BarsRef)}
    app = _client_app(settings) if refs else None
    frames = {k: v.load(app) if isinstance(v, BarsRef) else v for k, v in given.items()}
    for key, frame in frames.items():
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"bars{'' if key is None else f'[{key!r}]'}: expected a DataFrame "
                            f"or a BarsRef, not {type(frame).__name__}")
    return frames, refs


def _client_app(settings: Settings | None) -> Any:
    from tradelab.app import build
    from tradelab.config import load_config

    return build(settings or load_config())


def strategy_payload(cls: type[Strategy]) -> bytes:
    """``cls`` pickled with cloudpickle; a ``strategies/*.py`` plug-in class by value.

    Plug-in modules are registered for by-value pickling only for this call, so
    the process-wide cloudpickle registry is left as it was.
    """
    import sys

    name = cls.__module__
    module = sys.modules.get(name)
    by_value = (module is not None and name.startswith(_PLUGIN_PREFIX)
                and name not in cloudpickle.list_registry_pickle_by_value())
    if by_value:
        cloudpickle.register_pickle_by_value(module)
    try:
        return cloudpickle.dumps(cls)
    finally:
        if by_value:
            cloudpickle.unregister_pickle_by_value(module)


# -- worker side ----------------------------------------------------------------------
# Memos of one worker process: unpickling a class per task would give each chunk a
# different class object, and resolving a BarsRef per task would re-read the cache.
_lock = threading.Lock()
_classes: dict[bytes, type[Strategy]] = {}
_apps: dict[str, Any] = {}
_frames: OrderedDict[tuple[BarsRef, str], tuple[pd.DataFrame, str]] = OrderedDict()


@dataclass(frozen=True)
class _RefData:
    """What a task needs to resolve a BarsRef on its worker."""

    ref: BarsRef
    settings: Any
    settings_key: str
    digest: str


def _strategy_from(payload: bytes) -> type[Strategy]:
    key = hashlib.sha256(payload).digest()
    with _lock:
        cls = _classes.get(key)
        if cls is None:
            cls = _classes[key] = cloudpickle.loads(payload)
    return cls


def _resolve(data: _RefData) -> pd.DataFrame:
    key = (data.ref, data.settings_key)
    with _lock:
        hit = _frames.get(key)
        if hit is None:
            app = _apps.get(data.settings_key)
            if app is None:
                from tradelab.app import build

                app = _apps[data.settings_key] = build(data.settings)
            frame = data.ref.load(app)
            hit = _frames[key] = (frame, bars_digest(frame))
            while len(_frames) > _MEMO_SIZE:
                _frames.popitem(last=False)
    frame, digest = hit
    if digest != data.digest:
        raise BarsMismatchError(f"{data.ref}: this worker's bars hash {digest}, the client's "
                                f"{data.digest}; its cache or source returned other data")
    return frame


def _run_task(payload: bytes, combos: list[dict[str, Any]], data: pd.DataFrame | _RefData,
              execution: Execution, ppy: float, window: Window | None = None,
              edges: np.ndarray | None = None,
              trade: TradeSpec | None = None) -> dict[str, np.ndarray]:
    """One chunk on a worker: the local sweep's per-chunk function on the same bars."""
    bars = _resolve(data) if isinstance(data, _RefData) else data
    return run_window(_strategy_from(payload), combos, bars, execution, ppy, window, edges,
                      trade)


# -- client side ----------------------------------------------------------------------
@contextlib.contextmanager
def connect(cluster: Any, n_workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` for ``cluster``; whatever is created here is closed after.

    ``cluster``: ``"local"`` (a :class:`distributed.LocalCluster` of ``n_workers``
    single-threaded processes on 127.0.0.1), a scheduler address
    (``"tcp://host:8786"``), a cluster object or an existing ``Client``.
    """
    from distributed import Client, LocalCluster

    if isinstance(cluster, Client):
        yield cluster
    elif cluster == "local":
        # No dashboard; the scheduler's HTTP routes on a free loopback port, not 8787.
        with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=None,
                          scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as local, \
                Client(local, set_as_default=False) as client:
            yield client
    elif isinstance(cluster, str) or hasattr(cluster, "scheduler_address"):
        with Client(cluster, set_as_default=False) as client:
            yield client
    else:
        raise TypeError(f"cluster = {cluster!r}: expected 'local', a scheduler address, "
                        "a cluster or a distributed.Client")


def run_on_cluster(client: Any, cls: type[Strategy], execution: Execution,
                   chunks: list[list[dict[str, Any]]], frames: Mapping[str | None, pd.DataFrame],
                   refs: Mapping[str | None, BarsRef], ppy: Mapping[str | None, float],
                   settings: Settings | None, retries: int, bar: Any,
                   window: Window | None = None,
                   edges: Mapping[str | None, np.ndarray] | None = None,
                   trade: TradeSpec | None = None
                   ) -> tuple[dict[str | None, list[dict[str, np.ndarray]]], list[ChunkRetry]]:
    """Every chunk of every symbol as a task; results in chunk order per symbol.

    ``window``, ``edges`` (by symbol) and ``trade`` are passed on to
    :func:`~tradelab.research.walkforward.run_window`.

    A failed task is resubmitted (under a new key) up to ``retries`` times; after
    that the remaining tasks are cancelled and :class:`ChunkFailedError` names the
    chunk's symbol, first combination and the last cause.
    """
    from distributed import as_completed

    payload = strategy_payload(cls)
    data: dict[str | None, Any] = {}
    for key, frame in frames.items():
        if key in refs:
            if settings is None:
                from tradelab.config import load_config

                settings = load_config()
            data[key] = _RefData(refs[key], settings, settings.model_dump_json(),
                                 bars_digest(frame))
        else:  # once per worker, not once per task
            # hash=False: a content-hashed key would be the same for every window of a
            # walk-forward (same frame), and a new scatter racing the scheduler's release
            # of the previous round's key loses the data and cancels every task using it.
            data[key] = client.scatter(frame, broadcast=True, hash=False)
    tasks = [(key, i) for key in frames for i in range(len(chunks))]
    token = uuid.uuid4().hex[:12]
    errors: list[list[str]] = [[] for _ in tasks]

    def submit(t: int) -> Any:
        key, i = tasks[t]
        return client.submit(_run_task, payload, chunks[i], data[key], execution, ppy[key],
                             window, None if edges is None else edges.get(key), trade,
                             key=f"tradelab-sweep-{token}-{t}-{len(errors[t])}", pure=False)

    live: dict[str, tuple[Any, int]] = {}  # future key -> (future, task)
    for t in range(len(tasks)):
        future = submit(t)
        live[future.key] = (future, t)
    results: list[dict[str, np.ndarray] | None] = [None] * len(tasks)
    pending = as_completed([f for f, _ in live.values()], loop=client.loop, with_results=False)
    try:
        for future in pending:
            _, t = live.pop(future.key)
            if future.status == "finished":
                results[t] = future.result()
                bar.update(1)
                continue
            exc = future.exception() if future.status == "error" else RuntimeError(
                f"task {future.status}")
            errors[t].append(f"{type(exc).__name__}: {exc}")
            if len(errors[t]) > retries:
                key, i = tasks[t]
                where = "" if key is None else f" of {key}"
                raise ChunkFailedError(
                    f"sweep chunk {i}{where} (first combination {chunks[i][0]}) failed "
                    f"{len(errors[t])} time(s); last error: {errors[t][-1]}") from exc
            retry = submit(t)
            live[retry.key] = (retry, t)
            pending.add(retry)
    finally:
        if live:  # a chunk failed for good: the others are of no use any more
            client.cancel([f for f, _ in live.values()])
    retried = [ChunkRetry(tasks[t][0], tasks[t][1], dict(chunks[tasks[t][1]][0]),
                          len(errors[t]) + 1, tuple(errors[t]))
               for t in range(len(tasks)) if errors[t]]
    parts: dict[str | None, list[dict[str, np.ndarray]]] = {key: [] for key in frames}
    for (key, _), res in zip(tasks, results, strict=True):
        assert res is not None  # every task finished or we raised
        parts[key].append(res)
    return parts, retried
