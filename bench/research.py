"""Research benchmarks: prints figures and ratios against raw vectorbt and backtesting.py.

Run with ``make bench`` (or ``.venv/bin/python bench/research.py``); numba's
cache directory comes from ``NUMBA_CACHE_DIR``. Options: ``--bars N`` (last N
SPX bars, default all 5,031), ``--repeats R``, ``--btpy-combos K`` (how many
grid combinations backtesting.py actually runs before extrapolating; 0 runs
them all, the default), ``--skip-cold`` (the cold-numba-cache start takes ~40 s).

Figures:

0. The 10,000-combination SMA sweep (the issue's speed figure): the whole
   sweep without and with the overfitting estimate, its signal generation
   alone, and the peak RSS of a fresh process running it (``--sweep-only``
   prints just this). With ``--baseline-tree DIR`` (a checkout of an earlier
   commit, e.g. ``git worktree add /tmp/base fe3f346``) it also runs the same sweep
   from that tree and from this one in fresh subprocesses, taking turns, and prints
   both figures, CPU times, peak RSS and the ratios (``bench/sweep_baseline.py``).
1. tradelab ``sweep`` throughput on a 1,000-combination SMA grid, with its
   default worker threads (one per CPU, capped by the chunks) and with one.
2. Raw vectorbt on the same grid (``vbt.MA.run`` + ``crossed_above/below`` +
   ``Portfolio.from_signals`` with the same conventions + the same metrics via
   vectorbt's own accessors); overhead ratio tradelab / raw (goal <= 1.10).
3. backtesting.py ``Backtest.optimize`` (maximize Sharpe) on the same grid, with
   its defaults (a process pool of ``os.cpu_count()`` workers); speedup (goal
   >= 100x).
4. Fresh-process time to the first backtest result (import included), warm and
   cold numba cache, split into imports, ``import vectorbt`` and the first call.
5. ``import tradelab`` time in a fresh process, and whether vectorbt got imported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
FAST = list(range(2, 42))              # 40 values
SLOW = list(range(50, 300, 10))        # 25 values, all > max(FAST): 1,000 valid combos
CASH, FEES = 100_000.0, 0.0005
FAST_10K = list(range(2, 102))         # 100 values
SLOW_10K = list(range(105, 305, 2))    # 100 values, all > max(FAST_10K): 10,000 combos


def median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def load_bars(n: int | None) -> pd.DataFrame:
    from tradelab.data.sample import SampleSource

    bars = SampleSource().load("SPX")
    return bars.iloc[-n:] if n else bars


def sma_class():
    from tradelab.strategy.registry import StrategyRegistry

    return StrategyRegistry.discover([ROOT / "strategies"], entry_points=False).get("sma_cross")


def run_tradelab(bars: pd.DataFrame, cls, workers: int | None = None) -> pd.DataFrame:
    from tradelab.research.sweep import sweep

    return sweep(cls, bars, {"fast": FAST, "slow": SLOW}, progress=False, workers=workers,
                 cash=CASH, fees=FEES, fixed_fees=0.0, slippage=0.0, size=1.0,
                 size_type="percent", fill="next_open", fractional=False).table


def run_raw_vbt(bars: pd.DataFrame) -> pd.DataFrame:
    """What a vectorbt user writes by hand for the same grid and conventions."""
    import vectorbt as vbt

    vbt.settings.returns["year_freq"] = "252 days"  # annualize like tradelab (daily bars)
    close = bars["close"]
    combos = [(f, s) for f in FAST for s in SLOW if f < s]
    fast = vbt.MA.run(close, [f for f, _ in combos], short_name="fast")
    slow = vbt.MA.run(close, [s for _, s in combos], short_name="slow")
    entries = fast.ma_crossed_above(slow).vbt.fshift(1, fill_value=False).astype(bool)
    exits = fast.ma_crossed_below(slow).vbt.fshift(1, fill_value=False).astype(bool)
    pf = vbt.Portfolio.from_signals(
        close, entries, exits, price=bars["open"], size=1.0, size_type="percent",
        fees=FEES, fixed_fees=0.0, slippage=0.0, size_granularity=1.0, init_cash=CASH,
        direction="longonly", accumulate=False, upon_long_conflict="ignore", freq="1D")
    trades = pf.trades
    out = pd.DataFrame({
        "total_return": pf.total_return().to_numpy(),
        "cagr": pf.annualized_return().to_numpy(),
        "sharpe": pf.sharpe_ratio().to_numpy(),
        "sortino": pf.sortino_ratio().to_numpy(),
        "max_drawdown": pf.max_drawdown().to_numpy(),
        "win_rate": trades.closed.win_rate().to_numpy(),
        "n_trades": trades.count().to_numpy(),
        "exposure": (pf.assets() > 0).mean().to_numpy(),
        "final_equity": pf.final_value().to_numpy(),
    })
    out.insert(0, "slow", [s for _, s in combos])
    out.insert(0, "fast", [f for f, _ in combos])
    return out


def _sma(x, n):
    return pd.Series(x).rolling(n).mean().to_numpy()


def _btpy_strategy():
    """backtesting.py's SMA cross; module-level so its process pool can pickle it."""
    from backtesting import Strategy
    from backtesting.lib import crossover

    global BtpySmaCross

    class BtpySmaCross(Strategy):
        fast = 10
        slow = 30

        def init(self):
            self.f = self.I(_sma, self.data.Close, self.fast)
            self.s = self.I(_sma, self.data.Close, self.slow)

        def next(self):
            if crossover(self.f, self.s):
                self.buy()
            elif crossover(self.s, self.f):
                self.position.close()

    BtpySmaCross.__qualname__ = "BtpySmaCross"
    return BtpySmaCross


def run_backtesting_py(bars: pd.DataFrame, combos: int) -> tuple[float, int]:
    """``Backtest.optimize`` over the grid (or its first ``combos`` fast values)."""
    from backtesting import Backtest

    strategy = _btpy_strategy()
    data = bars.rename(columns=str.capitalize)
    data.index = data.index.tz_convert(None)
    fast = FAST
    if combos:
        fast = FAST[: max(1, combos // len(SLOW))]
    n = sum(1 for f in fast for s in SLOW if f < s)
    bt = Backtest(data, strategy, cash=CASH, commission=FEES, exclusive_orders=False,
                  finalize_trades=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        bt.optimize(fast=fast, slow=SLOW, constraint=lambda p: p.fast < p.slow,
                    maximize="Sharpe Ratio", max_tries=None, return_heatmap=False)
        return time.perf_counter() - t, n


SWEEP_10K = """
import resource, sys, time
sys.path.insert(0, {bench!r})
import research as R
from tradelab.research.sweep import sweep
bars, cls = R.load_bars(None), R.sma_class()
t = time.perf_counter()
sweep(cls, bars, {{"fast": R.FAST_10K, "slow": R.SLOW_10K}}, progress=False, overfit=False)
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def sweep_10k(bars: pd.DataFrame, cls, repeats: int) -> None:
    """The 10,000-combination SMA sweep: whole sweep, its signal generation alone, peak RSS.

    The per-process indicator memo (tradelab.strategy._memo) is cleared before
    every timed run, so a repeat does not reuse the columns of the one before.
    """
    from tradelab.research.simulate import chunk_signals
    from tradelab.research.sweep import expand_grid, sweep
    from tradelab.strategy import _memo

    grid = {"fast": FAST_10K, "slow": SLOW_10K}
    combos, _ = expand_grid(cls, grid)
    chunks = [combos[i:i + 500] for i in range(0, len(combos), 500)]

    def cold(fn):
        def run():
            _memo.clear()
            return fn()
        return run

    def signals():
        for chunk in chunks:
            chunk_signals(cls, chunk, bars)

    def whole(**kw):
        return sweep(cls, bars, grid, progress=False, **kw)

    whole(), signals()  # warm up numba
    t_sig, _ = median_time(cold(signals), repeats)
    t_plain, _ = median_time(cold(lambda: whole(overfit=False)), repeats)
    t_all, _ = median_time(cold(whole), repeats)
    rss = statistics.median(float(fresh(SWEEP_10K.format(bench=str(ROOT / "bench")))[1])
                            for _ in range(3))
    print(f"(0) 10,000-combination SMA sweep (fast 2..101 x slow 105..303): {t_plain:.2f} s "
          f"without / {t_all:.2f} s with the overfitting estimate (median of {repeats}); "
          f"signal generation alone {t_sig:.2f} s; peak RSS {rss:,.0f} MiB (fresh process)")


FIRST_RESULT = """
import time; t = time.perf_counter()
import tradelab
from tradelab.data.sample import SampleSource
from tradelab.research.backtest import backtest
from tradelab.strategy.registry import StrategyRegistry
cls = StrategyRegistry.discover([{root!r} + "/strategies"], entry_points=False).get("sma_cross")
bars = SampleSource().load("SPX")
t1 = time.perf_counter()
import vectorbt
t2 = time.perf_counter()
r = backtest(cls, bars)
t3 = time.perf_counter()
print(t3 - t, r.final_equity, t1 - t, t2 - t1, t3 - t2)
"""

IMPORT_ONLY = """
import sys, time; t = time.perf_counter()
import tradelab
dt = time.perf_counter() - t
print(dt, "vectorbt" in sys.modules)
"""


def fresh(code: str, cache_dir: str | None = None) -> list[str]:
    env = dict(os.environ)
    if cache_dir:
        env["NUMBA_CACHE_DIR"] = cache_dir
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=ROOT, check=True)
    return out.stdout.split()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=0, help="last N SPX bars (0 = all)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--btpy-combos", type=int, default=0,
                    help="combos backtesting.py runs before extrapolating (0 = all, the "
                         "default: extrapolating from a few combos overstates its time)")
    ap.add_argument("--skip-cold", action="store_true")
    ap.add_argument("--sweep-only", action="store_true",
                    help="only figure (0), the 10,000-combination sweep")
    ap.add_argument("--baseline-tree", type=Path, default=None,
                    help="also run figure (0) from this source tree and print the ratios")
    args = ap.parse_args()

    from tradelab.config import ResearchSettings

    os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bars
    bars = load_bars(args.bars or None)
    cls = sma_class()
    n_combos = sum(1 for f in FAST for s in SLOW if f < s)
    print(f"bars: {len(bars)} SPX daily ({bars.index[0]:%Y-%m-%d}..{bars.index[-1]:%Y-%m-%d}); "
          f"grid fast {len(FAST)} x slow {len(SLOW)} = {n_combos} valid combinations")

    sweep_10k(bars, cls, args.repeats)
    if args.baseline_tree is not None:
        sys.path.insert(0, str(ROOT / "bench"))
        from sweep_baseline import compare

        print("    the same sweep, baseline tree vs this one (fresh subprocesses, taking turns):")
        compare(args.baseline_tree.resolve(), ROOT, args.repeats, 1)
    if args.sweep_only:
        return
    workers = min(os.cpu_count() or 1, -(-n_combos // ResearchSettings().sweep_chunk_size))
    run_tradelab(bars, cls), run_raw_vbt(bars)  # warm up numba and caches
    t_tl, table = median_time(lambda: run_tradelab(bars, cls), args.repeats)
    t_one, one = median_time(lambda: run_tradelab(bars, cls, workers=1), args.repeats)
    t_raw, raw = median_time(lambda: run_raw_vbt(bars), args.repeats)
    print(f"(1) tradelab sweep:  {t_tl:.3f} s  -> {n_combos / t_tl:,.0f} backtests/s "
          f"(median of {args.repeats}; {workers} worker threads on {os.cpu_count()} CPUs)")
    print(f"    one worker:      {t_one:.3f} s  -> {n_combos / t_one:,.0f} backtests/s; "
          f"parallel speedup {t_one / t_tl:.2f}x; same table: {one.equals(table)}")
    print(f"(2) raw vectorbt:    {t_raw:.3f} s  -> {n_combos / t_raw:,.0f} backtests/s; "
          f"overhead ratio tradelab/raw = {t_tl / t_raw:.3f} (goal <= 1.10)")
    same = np.isclose(table["final_equity"].to_numpy(), raw["final_equity"].to_numpy(),
                      rtol=1e-9, atol=0)
    print(f"    final equity equal to 1e-9 relative in {same.sum()}/{len(same)} combos")
    if same.any():
        cols = ["total_return", "cagr", "sharpe", "sortino", "max_drawdown", "win_rate",
                "n_trades", "exposure"]
        worst = max(float(np.nanmax(np.abs(table.loc[same, c].to_numpy(dtype=float)
                                            - raw.loc[same, c].to_numpy(dtype=float))))
                    for c in cols)
        print(f"    on those, largest metric difference vs vectorbt's own accessors: {worst:.2e}")

    t_bt, n_bt = run_backtesting_py(bars, args.btpy_combos)
    per = t_bt / n_bt
    full = per * n_combos
    note = "measured" if n_bt == n_combos else f"extrapolated from {n_bt} combos"
    print(f"(3) backtesting.py optimize (its default pool: {os.cpu_count()} processes): "
          f"{t_bt:.2f} s for {n_bt} combos -> {1 / per:,.1f} backtests/s; {full:,.1f} s for "
          f"{n_combos} ({note}); speedup tradelab = {full / t_tl:,.0f}x (goal >= 100x); "
          f"tradelab on one worker: {full / t_one:,.0f}x")

    warm = [[float(x) for x in fresh(FIRST_RESULT.format(root=str(ROOT)))] for _ in range(3)]
    med = [statistics.median(w[i] for w in warm) for i in (0, 2, 3, 4)]
    print(f"(4) fresh process to first backtest, warm numba cache: {med[0]:.2f} s (median of 3): "
          f"tradelab + pandas + bars {med[1]:.2f} s, import vectorbt {med[2]:.2f} s, "
          f"first backtest (numba loads + run) {med[3]:.2f} s")
    if not args.skip_cold:
        with tempfile.TemporaryDirectory() as tmp:
            cold = [float(x) for x in fresh(FIRST_RESULT.format(root=str(ROOT)), cache_dir=tmp)]
        print(f"    cold numba cache (empty temp NUMBA_CACHE_DIR): {cold[0]:.2f} s "
              f"(first backtest {cold[4]:.2f} s)")
    runs = [fresh(IMPORT_ONLY) for _ in range(5)]
    t_imp = statistics.median(float(r[0]) for r in runs)
    print(f"(5) import tradelab: {t_imp * 1000:.0f} ms (median of 5); "
          f"vectorbt imported: {runs[0][1]}")


if __name__ == "__main__":
    main()
