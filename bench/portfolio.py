"""The engine on a portfolio strategy vs backtrader: bars per second (issue 13's floor: ≥ 2×).

Run: ``.venv/bin/python bench/portfolio.py [--start 1990-01-01] [--end 2022-12-31] [--repeat 1]``.

What is measured
----------------
* The workload: ``momentum_rotation`` (top 5 of ``sp20`` by 12-1 month momentum, equal
  weight, rebalanced on the first bar of each month) over the sample source's 20
  stocks, daily closes 1990–2022 (close only). "Bars" are symbol bars: the sum over
  the symbols of the bars each has (a symbol listed later has fewer).
* **tradelab**: :meth:`tradelab.App.portfolio_engine` replaying the 20 symbols with
  **persistence on** (a SQLite store in a temporary folder: orders written ahead,
  fills, equity snapshots, every bar in ``run_bars``, commits per ``[engine]``), the
  strategy's weights computed at each rebalance, orders from
  :func:`tradelab.orders.rebalance.rebalance` through risk and the paper broker. Timed:
  ``engine.run()``. Two figures: the default, the strategy handed its declared
  ``decision_window`` (253 bars, its warmup; the issue's figure), and handed every bar
  seen (``history="all"``: the same decisions, see :mod:`tradelab.engine.rebalancer`;
  the parity tests check both).
* **backtrader**: the same rotation as a ``bt.Strategy`` over 20 ``PandasData`` feeds
  in the same process (``stdstats=False``: no observers, which favours backtrader),
  ``order_target_percent`` per symbol on the first bar of each month (sells first),
  momentum from the feeds' closes, commission 0.0005. Timed: ``cerebro.run()``
  (including backtrader's preload of the feeds). No persistence.
* Both load the same frames before the clock starts. Each figure is the best of
  ``--repeat`` runs, the runs interleaved; wall-clock seconds (the issue's figure) and
  the process's CPU seconds (all its threads) are both reported: on a shared machine
  the wall clock measures the neighbours too, the CPU time much less (it leaves out
  waits on the disk, which only tradelab has). The two do not fill alike
  (backtrader sizes at the decision close and fills at the next open); the bench
  compares throughput on the same work, the parity tests compare results.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


Run = tuple[float, float, int, int]  # wall s, CPU s, bars, fills


def _tradelab(bars: dict, db: Path, history: int | str | None) -> Run:
    from tradelab.app import build
    from tradelab.config import load_config

    env = {"TRADELAB_HOME": str(ROOT), "TRADELAB__CACHE__DIR": str(db.parent / "cache"),
           "PATH": os.environ.get("PATH", ""), "TRADELAB__STORE__URL": f"sqlite:///{db}"}
    tl = build(load_config(environ=env, home=ROOT))
    engine = tl.portfolio_engine("momentum_rotation", bars=bars, account=f"bench{time.time_ns()}",
                                 history=history)
    t0, c0 = time.perf_counter(), time.process_time()
    result = engine.run()
    return (time.perf_counter() - t0, time.process_time() - c0, result.bars,
            len(result.fills))


def _backtrader(bars: dict, cash: float, fees: float) -> Run:
    import backtrader as bt

    class Rotation(bt.Strategy):
        params = (("top", 5), ("lookback", 252), ("skip", 21))

        def __init__(self) -> None:
            self.month: int | None = None
            self.orders = 0

        def prenext(self) -> None:
            self.next()  # trade the symbols listed so far, like the engine

        def notify_order(self, order: bt.Order) -> None:
            if order.status == order.Completed:
                self.orders += 1

        def next(self) -> None:
            month = self.datetime.date(0).month
            if month == self.month:
                return
            self.month = month
            p: Any = self.params
            scores = []
            for i, d in enumerate(self.datas):
                if len(d) > p.lookback:
                    scores.append((-(d.close[-p.skip] / d.close[-p.lookback] - 1.0), i))
            held = {i for _, i in sorted(scores)[:p.top]}
            plan = [(0.0 if i not in held else 1.0 / p.top, d) for i, d in enumerate(self.datas)
                    if len(d)]
            for target, d in sorted(plan, key=lambda x: x[0]):  # sells (target 0) first
                if target or self.getposition(d).size:
                    self.order_target_percent(d, target=target)

    cerebro = bt.Cerebro(stdstats=False)
    for sym, frame in bars.items():
        df = frame[["open", "high", "low", "close", "volume"]].copy()
        df.index = df.index.tz_convert(None)
        cerebro.adddata(bt.feeds.PandasData(dataname=df), name=sym)
    cerebro.addstrategy(Rotation)
    cerebro.broker.setcash(cash)
    cerebro.broker.setcommission(commission=fees)
    t0, c0 = time.perf_counter(), time.process_time()
    strat = cerebro.run()[0]
    return (time.perf_counter() - t0, time.process_time() - c0,
            sum(len(b) for b in bars.values()), strat.orders)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default=None)
    parser.add_argument("--end", default=None)
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs each")
    parser.add_argument("--skip-all", action="store_true", help="no history='all' runs")
    args = parser.parse_args(argv)
    from tradelab.data.universe import load_universe
    from tradelab.execution import Execution

    bars = load_universe("sp20", "sample", args.start, args.end)
    ex = Execution()
    ours: list[Run] = []
    whole: list[Run] = []
    theirs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            ours.append(_tradelab(bars, Path(tmp) / f"bench{i}.db", None))
            if not args.skip_all:
                whole.append(_tradelab(bars, Path(tmp) / f"whole{i}.db", "all"))
            theirs.append(_backtrader(bars, ex.cash, ex.fees))
    first = min(b.index[0] for b in bars.values())
    last = max(b.index[-1] for b in bars.values())
    print(f"momentum_rotation, 20 symbols, {first:%Y-%m-%d}..{last:%Y-%m-%d}, monthly "
          f"(best of {args.repeat}; load average {os.getloadavg()[0]:.2f})")
    rows = [("tradelab engine, SQLite on (default)", ours),
            ("backtrader, 20 feeds, no observers", theirs)]
    if whole:
        rows.append(("tradelab engine, history='all'", whole))
    best = {}
    for label, runs in rows:
        wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
        n, fills = runs[0][2], runs[0][3]
        best[label] = (n / wall, n / cpu)
        print(f"  {label:38s} {n:,} bars: {wall:6.2f} s wall = {n / wall:7,.0f} bars/s, "
              f"{cpu:6.2f} s CPU = {n / cpu:7,.0f} bars/s, {fills} fills")
    bt_wall, bt_cpu = best[rows[1][0]]
    for label, _ in rows[::2]:
        w, c = best[label]
        print(f"  {label}: {w / bt_wall:.2f}x backtrader's bars/s (wall), {c / bt_cpu:.2f}x "
              "(CPU); issue floor >= 2x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
