"""Distributed sweep benchmark: scaling from 1 to 2 Dask worker processes.

Run with ``.venv/bin/python bench/distributed.py`` (numba's cache directory comes
from ``NUMBA_CACHE_DIR``). Options: ``--fast N`` and ``--slow N`` (grid axes,
default 100 x 50 = 5,000 SMA combinations, all valid), ``--bars N`` (last N SPX
bars, default all 5,031), ``--chunk-size`` (default 250), ``--repeats R``.

Figures (median of ``R`` runs, after a warm-up sweep that loads the modules and
numba kernels in every worker):

1. The local sweep in this process, on 1 thread and on 2 threads, for reference.
2. ``sweep(cluster=...)`` on a LocalCluster of 1 and of 2 single-threaded worker
   processes; parallel efficiency T1 / (2 x T2).

Prints figures, asserts nothing (the tests check that the tables are equal).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import pandas as pd


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", type=int, default=100)
    parser.add_argument("--slow", type=int, default=50)
    parser.add_argument("--bars", type=int, default=0)
    parser.add_argument("--chunk-size", type=int, default=250)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    # This file's folder is sys.path[0] and this file is named distributed.py: drop
    # the folder so that ``import distributed`` finds Dask's package, here and in
    # the spawned worker processes (they inherit sys.path).
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    from distributed import LocalCluster

    from tradelab.data.sample import SampleSource
    from tradelab.research.sweep import sweep
    from tradelab.strategy.registry import StrategyRegistry

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cls = StrategyRegistry.discover([os.path.join(root, "strategies")],
                                    entry_points=False).get("sma_cross")
    bars = SampleSource().load("SPX")
    bars = bars.iloc[-args.bars:] if args.bars else bars
    # Every fast window is below every slow one: all combinations are valid.
    grid = {"fast": list(range(2, 2 + args.fast)),
            "slow": list(range(2 + args.fast + 8, 2 + args.fast + 8 + 10 * args.slow, 10))}
    n = args.fast * args.slow
    common = dict(chunk_size=args.chunk_size, progress=False, fees=0.0005)
    print(f"sma_cross, {n:,} combinations on {len(bars):,} SPX bars, chunks of "
          f"{args.chunk_size} ({-(-n // args.chunk_size)} chunks), {os.cpu_count()} CPUs, "
          f"median of {args.repeats}")

    sweep(cls, bars, grid, workers=1, **common)  # numba kernels compiled/loaded
    for threads in (1, 2):
        t = median_time(lambda th=threads: sweep(cls, bars, grid, workers=th, **common),
                        args.repeats)
        print(f"  local, {threads} thread(s):     {t:7.2f} s  {n / t:8,.0f} backtests/s")

    wall: dict[int, float] = {}
    reference = sweep(cls, bars, grid, **common).table
    for n_workers in (1, 2):
        with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=None) as cluster:
            address = cluster.scheduler_address
            warm = sweep(cls, bars, grid, cluster=address, **common)  # imports, kernels
            same = warm.table.equals(reference)
            wall[n_workers] = median_time(
                lambda a=address: sweep(cls, bars, grid, cluster=a, **common), args.repeats)
        t = wall[n_workers]
        print(f"  dask, {n_workers} worker(s):      {t:7.2f} s  {n / t:8,.0f} backtests/s"
              f"  (table equal to local: {same})")
    print(f"  parallel efficiency T1 / (2 x T2): {wall[1] / (2 * wall[2]):.2f}")


if __name__ == "__main__":
    pd.set_option("display.width", 120)
    main()
