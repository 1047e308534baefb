"""The 10,000-combination SMA sweep on two source trees, in the same bench run.

Usage::

    git worktree add /tmp/base fe3f346          # the tree to compare with (read-only use)
    .venv/bin/python bench/sweep_baseline.py --baseline-tree /tmp/base [--repeats 3]

Each tree runs in fresh subprocesses of this very interpreter (the same venv) with
``PYTHONPATH=<tree>``, so the tree's ``tradelab`` package and its ``strategies/``
are the ones imported. The trees take turns (baseline, current, baseline, ...) so
that a change in the machine's load falls on both. Per tree it prints:

* the sweep without and with the overfitting estimate: median of ``--repeats``
  timed runs after one warm-up run (numba's disk cache loaded), the indicator
  memo cleared before each run when the tree has one;
* the peak RSS of a fresh process that runs the sweep once (``overfit=False``),
  median of ``--rss-runs`` processes;

a tree other than this one compiles into its own numba cache (``NUMBA_CACHE_DIR``
with the tree's name appended), so that the trees never share cache entries;

then the ratios baseline / current (above 1: the current tree is faster/leaner).
``bench/research.py --sweep-only --baseline-tree DIR`` prints the same.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs inside the tree's interpreter: only APIs both trees have (sweep(overfit=) when
# the tree has it,
# SampleSource, StrategyRegistry.discover). Prints, per repeat, the wall seconds and
# the process's CPU seconds (user + system, all threads) of the sweep without and
# with the overfitting estimate; with repeats=0 it runs the sweep once and prints
# the peak RSS in MiB.
TIMED = """
import resource, sys, time
from pathlib import Path
tree, repeats = Path(sys.argv[1]), int(sys.argv[2])
from tradelab.data.sample import SampleSource
from tradelab.research.sweep import sweep
from tradelab.strategy.registry import StrategyRegistry
try:
    from tradelab.strategy import _memo
except ImportError:
    _memo = None
cls = StrategyRegistry.discover([tree / "strategies"], entry_points=False).get("sma_cross")
bars = SampleSource().load("SPX")
grid = {"fast": list(range(2, 102)), "slow": list(range(105, 305, 2))}
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
import inspect
# a tree from before the overfitting estimate: both figures are the plain sweep
HAS_OVERFIT = "overfit" in inspect.signature(sweep).parameters
def run(overfit):
    if _memo is not None:
        _memo.clear()
    t, c = time.perf_counter(), cpu()
    res = sweep(cls, bars, grid, progress=False, **({"overfit": overfit} if HAS_OVERFIT else {}))
    assert len(res.table) == 10_000, len(res.table)
    return time.perf_counter() - t, cpu() - c
if repeats == 0:
    run(False)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
else:
    run(True)  # warm-up: numba's disk cache, vectorbt's imports
    for _ in range(repeats):
        print(*run(False), *run(True))
"""


def run_tree(tree: Path, repeats: int) -> list[float]:
    """``[wall, cpu, wall with, cpu with] * repeats``, or ``[peak MiB]`` with ``repeats=0``."""
    env = dict(os.environ, PYTHONPATH=str(tree), TQDM_DISABLE="1")
    cache = Path(env.get("NUMBA_CACHE_DIR", ROOT / "var" / "numba-cache"))
    if tree != ROOT:
        # its own numba cache: the trees' kernels (e.g. the cached copy of vectorbt's,
        # keyed by vectorbt's file) never load or overwrite each other's entries
        cache = cache.with_name(f"{cache.name}-{tree.name}")
    env["NUMBA_CACHE_DIR"] = str(cache)
    out = subprocess.run([sys.executable, "-c", TIMED, str(tree), str(repeats)],
                         capture_output=True, text=True, env=env, cwd=tree, check=False)
    if out.returncode:
        raise SystemExit(f"sweep in {tree} failed:\n{out.stderr[-3000:]}")
    return [float(x) for x in out.stdout.split()]


def compare(baseline: Path, current: Path, repeats: int, rss_runs: int) -> dict[str, float]:
    """Time and measure the sweep in both trees, alternating; print and return the figures."""
    times: dict[Path, list[float]] = {baseline: [], current: []}
    rss: dict[Path, list[float]] = {baseline: [], current: []}
    for tree in (baseline, current):  # fills each tree's numba cache: no compiling below
        run_tree(tree, 0)
    for _ in range(max(rss_runs, 1)):
        for tree in (baseline, current):
            rss[tree] += run_tree(tree, 0)
    for _ in range(repeats):  # one timed process per repeat and tree, taking turns
        for tree in (baseline, current):
            times[tree] += run_tree(tree, 1)
    fig: dict[str, float] = {}
    for name, tree in (("baseline", baseline), ("current", current)):
        for i, key in enumerate(("plain", "plain_cpu", "overfit", "overfit_cpu")):
            fig[f"{name}_{key}"] = statistics.median(times[tree][i::4])
        fig[f"{name}_rss"] = statistics.median(rss[tree])
        print(f"    {name:8s} {tree!s:24s} {fig[f'{name}_plain']:6.2f} s without / "
              f"{fig[f'{name}_overfit']:6.2f} s with the overfitting estimate "
              f"(median of {repeats}; CPU {fig[f'{name}_plain_cpu']:.2f} s / "
              f"{fig[f'{name}_overfit_cpu']:.2f} s); peak RSS {fig[f'{name}_rss']:,.0f} MiB "
              f"(median of {len(rss[tree])} fresh processes)")
    print(f"    ratio baseline/current: {fig['baseline_plain'] / fig['current_plain']:.2f}x "
          f"faster without, {fig['baseline_overfit'] / fig['current_overfit']:.2f}x with the "
          f"estimate (CPU time: {fig['baseline_plain_cpu'] / fig['current_plain_cpu']:.2f}x, "
          f"{fig['baseline_overfit_cpu'] / fig['current_overfit_cpu']:.2f}x); peak RSS "
          f"{fig['baseline_rss'] / fig['current_rss']:.2f}x lower")
    return fig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline-tree", type=Path, required=True,
                    help="source tree to compare with (e.g. a git worktree of fe3f346)")
    ap.add_argument("--tree", type=Path, default=ROOT, help="current tree (default: this one)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rss-runs", type=int, default=1)
    args = ap.parse_args()
    print("(0') 10,000-combination SMA sweep, baseline tree vs current, same run "
          "(fresh subprocesses, same venv):")
    compare(args.baseline_tree.resolve(), args.tree.resolve(), args.repeats, args.rss_runs)


if __name__ == "__main__":
    main()
