"""Engine throughput and latency vs backtrader, same strategy (sma_cross 10/30), same 5,031 SPX bars.

Run: ``.venv/bin/python bench/engine.py [--repeat 5]``. Prints medians over the repeats.

What is measured
----------------
* **bars/s**: the whole pipeline, wall clock from engine construction to the
  end of ``run()``: replay feed → strategy → risk → order manager → paper
  broker → portfolio → SQLite store (WAL, ``synchronous=NORMAL``) with the
  default ``[engine]`` settings (``flush_every=500``, ``flush_seconds=0.5``). Every
  order row is committed before the broker sees it; snapshots (one per bar) and
  progress are committed every 500 bars (or 0.5 s) and at shutdown.
* **backtrader**: ``cerebro.run()`` on the same bars (data preloaded, no
  analyzers, no persistence), in the same process and the same repeat.
* **ratio**: tradelab bars/s ÷ backtrader bars/s of the same repeat; the median of
  those per-repeat ratios is reported (with the range), so that a slow moment of
  the machine affects both sides of a ratio alike.
* **garbage collection**: every timed run (backtrader's and each engine run) starts
  after a ``gc.collect()``, so that no run pays for collecting the cyclic garbage
  a *previous* run left (a full collection in this process takes ~0.1 s, which is
  half a run). Collections a run's own allocations trigger still count.
* **latency**: per order, from the moment the engine starts processing the bar
  (``Engine.step`` entry, i.e. the bar has arrived from the feed) until the
  order is *submitted*: its row is durably committed to the store (write-ahead
  transaction finished) **and** the paper broker has accepted it (returned a
  broker order id). It includes the strategy evaluation on that bar, the risk
  checks (with a store read of the kill switch) and the commit.
* **strategy µs/bar**: the per-bar cost of the strategy alone in window mode
  (``StrategyRunner.update`` on the same bars, no engine), which bounds what
  window mode can reach.
* ``--stages``: one more window-mode run with the engine's stages wrapped in
  timers (adds ~0.3 µs per wrapped call): µs/bar per stage, wall clock, over all
  5,031 bars. The rest of ``Engine.step`` (clock, marks, equity, risk checks, the
  recorder's buffering) is reported as "engine core".
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _strategy():  # type: ignore[no-untyped-def]
    from tradelab.strategy.registry import StrategyRegistry

    return StrategyRegistry.discover([ROOT / "strategies"], entry_points=False).create("sma_cross")


def run_engine(bars, mode: str, db: Path) -> tuple[float, list[float], int]:  # type: ignore[no-untyped-def]
    from tradelab.app import assemble_engine
    from tradelab.engine import EngineConfig, ReplayFeed
    from tradelab.execution import Execution
    from tradelab.store import Store

    strategy = _strategy()
    store = Store(f"sqlite:///{db}")
    store.upgrade()
    gc.collect()  # see "garbage collection" above
    t0 = time.perf_counter()
    engine = assemble_engine([(strategy, "SPX")], ReplayFeed(bars), Execution(), store=store,
                    config=EngineConfig(account=f"bench-{mode}", signal_mode=mode))
    result = engine.run()
    elapsed = time.perf_counter() - t0
    store.close()
    return result.bars / elapsed, result.latencies, len(result.fills)


def strategy_cost(bars) -> float:  # type: ignore[no-untyped-def]
    """Seconds per bar of the strategy alone in window mode."""
    from tradelab.engine.runner import StrategyRunner

    runner = StrategyRunner(_strategy(), "SPX")
    rows = list(zip(bars.index.to_pydatetime(), bars[["open", "high", "low", "close", "volume"]]
                    .to_numpy().tolist(), strict=True))
    t0 = time.perf_counter()
    for t, (o, h, low, c, v) in rows:
        runner.update(t, o, h, low, c, v)
    return (time.perf_counter() - t0) / len(rows)


def run_backtrader(bars) -> float:  # type: ignore[no-untyped-def]
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
    gc.collect()  # see "garbage collection" above
    t0 = time.perf_counter()
    cerebro.run()
    return len(df) / (time.perf_counter() - t0)


def stage_breakdown(bars, db: Path) -> list[tuple[str, float]]:  # type: ignore[no-untyped-def]
    """µs/bar per engine stage (window mode), measured by wrapping the stage functions."""
    from tradelab.engine import loop, persist, runner
    from tradelab.orders.brokers.paper import PaperBroker

    spent: dict[str, float] = {}
    stages = [(runner.StrategyRunner, "update", "strategy (window signals)"),
              (loop.Engine, "_act", "order path (risk, write-ahead commit, broker)"),
              (PaperBroker, "on_bar", "paper broker (fills)"),
              (persist.Recorder, "flush", "store flush (routine commits)"),
              (loop.Engine, "step", "step")]
    saved = []
    for owner, name, label in stages:
        orig = getattr(owner, name)
        saved.append((owner, name, orig))

        def timed(*a, _orig=orig, _label=label, **k):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return _orig(*a, **k)
            finally:
                spent[_label] = spent.get(_label, 0.0) + time.perf_counter() - t

        setattr(owner, name, timed)
    try:
        gc.collect()
        t0 = time.perf_counter()
        run_engine(bars, "window", db)
        total = time.perf_counter() - t0
    finally:
        for owner, name, orig in saved:
            setattr(owner, name, orig)
    n = len(bars)
    step = spent.pop("step")
    out = [(k, v / n * 1e6) for k, v in spent.items()]
    inner = sum(v for k, v in spent.items() if k != "store flush (routine commits)")
    flush = spent.get("store flush (routine commits)", 0.0)
    out.append(("engine core (rest of step)", (step - inner - flush) / n * 1e6))
    out.append(("outside step (store setup, feed, shutdown)", (total - step) / n * 1e6))
    out.append(("total", total / n * 1e6))
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--stages", action="store_true", help="also print a per-stage µs/bar breakdown")
    a = p.parse_args(argv)
    from tradelab.data.sample import SampleSource

    bars = SampleSource().load("SPX")
    modes = ("window", "precomputed")
    bt_rates: list[float] = []
    rates: dict[str, list[float]] = {m: [] for m in modes}
    p50s: dict[str, list[float]] = {m: [] for m in modes}
    p99s: dict[str, list[float]] = {m: [] for m in modes}
    ratios: dict[str, list[float]] = {m: [] for m in modes}
    orders = {}
    with tempfile.TemporaryDirectory() as tmp:
        run_engine(bars.iloc[:300], "window", Path(tmp) / "warm.db")  # imports, numpy/numba warm-up
        for i in range(a.repeat):
            bt_rate = run_backtrader(bars)
            bt_rates.append(bt_rate)
            for mode in modes:
                rate, lat, fills = run_engine(bars, mode, Path(tmp) / f"{mode}-{i}.db")
                lat_ms = [x * 1e3 for x in lat]
                rates[mode].append(rate)
                ratios[mode].append(rate / bt_rate)
                p50s[mode].append(statistics.median(lat_ms))
                p99s[mode].append(_pct(lat_ms, 0.99))
                orders[mode] = (len(lat), fills)
    med = statistics.median
    print(f"bars: {len(bars)} real SPX daily bars; strategy sma_cross(10, 30); SQLite persistence on; "
          f"medians of {a.repeat} repeats (ratio = median of per-repeat ratios, range in brackets)")
    print(f"backtrader:                 {med(bt_rates):>10,.0f} bars/s  ({1e6 / med(bt_rates):.1f} us/bar)")
    for mode in modes:
        n_orders, n_fills = orders[mode]
        print(f"tradelab engine ({mode:11}) {med(rates[mode]):>10,.0f} bars/s  ({1e6 / med(rates[mode]):.1f} "
              f"us/bar)  ratio {med(ratios[mode]):5.2f}x [{min(ratios[mode]):.2f}-{max(ratios[mode]):.2f}]  "
              f"bar->order submitted (durable + broker-accepted) "
              f"p50 {med(p50s[mode]):.3f} ms p99 {med(p99s[mode]):.3f} ms "
              f"({n_orders} orders, {n_fills} fills)")
    for mode in modes:
        print(f"  per repeat ({mode}): " + ", ".join(
            f"{r:,.0f} vs {b:,.0f} = {x:.2f}x" for r, b, x in zip(rates[mode], bt_rates, ratios[mode],
                                                                   strict=True)))
    print(f"strategy alone, window mode: {strategy_cost(bars) * 1e6:.1f} us/bar "
          f"(sma_cross.signals on a 31-bar numpy window)")
    print(f"backtrader per bar: {1e6 / med(bt_rates):.1f} us; 2x needs tradelab <= "
          f"{0.5e6 / med(bt_rates):.1f} us/bar for everything")
    if a.stages:
        with tempfile.TemporaryDirectory() as tmp:
            print("per-stage wall clock, window mode, one run (us/bar):")
            for label, us in stage_breakdown(bars, Path(tmp) / "stages.db"):
                print(f"  {label:45s} {us:6.1f}")


if __name__ == "__main__":
    main()
