"""Engine throughput and latency vs backtrader, same strategy (sma_cross 10/30), same 5,031 SPX bars.

Run: ``.venv/bin/python bench/engine.py``. Prints bars/s for the whole pipeline
(feed → strategy → risk → orders → paper broker → portfolio → SQLite store) in
both signal modes, backtrader on the same bars, the ratio, and p50/p99 latency
from bar arrival to order submitted.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_engine(bars, mode: str, db: Path) -> tuple[float, list[float], int]:
    from tradelab.engine import Engine, EngineConfig, ReplayFeed
    from tradelab.execution import Execution
    from tradelab.store import Store
    from tradelab.strategy.registry import StrategyRegistry

    strategy = StrategyRegistry.discover([ROOT / "strategies"], entry_points=False).create("sma_cross")
    store = Store(f"sqlite:///{db}")
    store.upgrade()
    t0 = time.perf_counter()
    engine = Engine([(strategy, "SPX")], ReplayFeed(bars), Execution(), store=store,
                    config=EngineConfig(account=f"bench-{mode}", signal_mode=mode))
    result = engine.run()
    elapsed = time.perf_counter() - t0
    return result.bars / elapsed, result.latencies, len(result.fills)


def run_backtrader(bars) -> float:
    import backtrader as bt

    df = bars.copy()
    df.index = df.index.tz_localize(None)

    class SmaCross(bt.Strategy):
        def __init__(self) -> None:
            self.cross = bt.ind.CrossOver(bt.ind.SMA(period=10), bt.ind.SMA(period=30))

        def next(self) -> None:
            if not self.position and self.cross > 0:
                self.buy(size=int(self.broker.getcash() / self.data.close[0] * 0.99))
            elif self.position and self.cross < 0:
                self.close()

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=df))
    cerebro.addstrategy(SmaCross)
    cerebro.broker.setcash(100_000.0)
    cerebro.broker.setcommission(commission=0.0005)
    t0 = time.perf_counter()
    cerebro.run()
    return len(df) / (time.perf_counter() - t0)


def main() -> None:
    from tradelab.data.sample import SampleSource

    bars = SampleSource().load("SPX")
    bt_rate = run_backtrader(bars)
    print(f"bars: {len(bars)} real SPX daily bars; strategy sma_cross(10, 30); SQLite persistence on")
    print(f"backtrader:                 {bt_rate:>10,.0f} bars/s")
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("window", "precomputed"):
            rate, lat, fills = run_engine(bars, mode, Path(tmp) / f"{mode}.db")
            lat_ms = sorted(x * 1e3 for x in lat)
            p50 = statistics.median(lat_ms)
            p99 = lat_ms[min(len(lat_ms) - 1, int(0.99 * len(lat_ms)))]
            print(f"tradelab engine ({mode:11}) {rate:>10,.0f} bars/s  "
                  f"ratio {rate / bt_rate:5.2f}x  "
                  f"bar->order submitted p50 {p50:.3f} ms p99 {p99:.3f} ms "
                  f"({len(lat)} orders, {fills} fills)")


if __name__ == "__main__":
    main()
