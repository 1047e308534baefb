"""Portfolio research benchmark: the 20-symbol monthly rotation over ~30 years, warm.

Run with ``.venv/bin/python bench/portfolio_research.py`` (numba's cache directory
comes from ``NUMBA_CACHE_DIR``). Options: ``--repeats R`` (default 5), ``--top N``.

Figures (issue 13's floor: <= 1 s warm in research):

* ``momentum_rotation`` on the ``sp20`` universe (20 US large caps, daily closes
  1990-2022, ~8,300 time stamps) through :func:`tradelab.backtest_portfolio` with
  the panel already loaded and aligned (warm: one untimed run first, so imports,
  numba compilation and the data cache are out of the figure), median of the repeats;
* the same split into its stages: the strategy's weights (checked), the exact
  rebalance loop (Decimal, every rebalance bar), vectorbt's book and the result
  (figures, per-symbol table);
* loading and aligning the panel from the sample source (not part of the figure).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FLOOR_S = 1.0


def median_time(fn: Any, repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--top", type=int, default=5)
    args = ap.parse_args()

    from tradelab.data.universe import load_panel
    from tradelab.execution import Execution
    from tradelab.research.portfolio import (
        _vbt_portfolio,
        backtest_portfolio,
        portfolio_strategy,
        simulate_rebalances,
    )
    from tradelab.research.portfolio_result import build_result
    from tradelab.strategy.portfolio import rebalance_bars

    t = time.perf_counter()
    panel = load_panel("sp20")
    load_s = time.perf_counter() - t
    strat = portfolio_strategy("momentum_rotation", {"top": args.top},
                               paths=[ROOT / "strategies"])
    ex = Execution()
    years = (panel.index[-1] - panel.index[0]).days / 365.25
    backtest_portfolio(strat, panel=panel, execution=ex)  # warm-up: imports, numba, caches

    total, result = median_time(lambda: backtest_portfolio(strat, panel=panel, execution=ex),
                                args.repeats)
    weights_s, weights = median_time(lambda: strat.target_weights(panel), args.repeats)
    decisions = rebalance_bars(panel.index, strat.rebalance, weights)
    loop_s, (size, price, orders) = median_time(
        lambda: simulate_rebalances(weights, panel, decisions, ex), args.repeats)
    vbt_s, pf = median_time(lambda: _vbt_portfolio(panel, size, price, ex), args.repeats)
    result_s, _ = median_time(lambda: build_result(strat, panel, ex, weights, decisions, size,
                                                   orders, pf, result.periods_per_year,
                                                   strat.rebalance), args.repeats)

    print(f"momentum_rotation (top {args.top}) on sp20: {len(panel.symbols)} symbols x "
          f"{len(panel):,} bars ({panel.index[0]:%Y-%m-%d}..{panel.index[-1]:%Y-%m-%d}, "
          f"{years:.1f} years), {result.stats['n_rebalances']} rebalances, "
          f"{result.stats['n_orders']} orders")
    verdict = "meets" if total <= FLOOR_S else "MISSES"
    print(f"  backtest_portfolio, warm (median of {args.repeats}): {total:.3f} s "
          f"-> {verdict} the <= {FLOOR_S:g} s floor")
    print(f"    weights {weights_s:.3f} s, rebalance loop {loop_s:.3f} s, "
          f"vectorbt book {vbt_s:.3f} s, result {result_s:.3f} s")
    print(f"  loading + aligning the panel (sample source, not timed above): {load_s:.3f} s")


if __name__ == "__main__":
    main()
