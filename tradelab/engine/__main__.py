"""``python -m tradelab.engine STRATEGY [--resume RUN] ...``: a paper run without the CLI layer.

Wired through :func:`tradelab.app.build` like ``tradelab paper``; ``--db``
overrides ``[store] url``. Prints ``run_id=<id>`` first (flushed) so a
supervising process knows what to resume.
"""

from __future__ import annotations

import argparse
import sys

from tradelab.app.session import PaperArgs, build_paper
from tradelab.errors import RunHalted, TradelabError


def main(argv: list[str] | None = None) -> int:
    """Run one paper session; returns the process exit code."""
    p = argparse.ArgumentParser(prog="python -m tradelab.engine")
    p.add_argument("strategy")
    p.add_argument("--source", help="data source (default [data] default_source)")
    p.add_argument("--symbol", help="symbol (default [data] default_symbol)")
    p.add_argument("--param", action="append", default=[], help="NAME=VALUE, repeatable")
    p.add_argument("--speed", default="max", help="'max' or bars per second")
    p.add_argument("--account", help="paper account (default [engine] account)")
    p.add_argument("--db", help="store URL (default [store] url)")
    p.add_argument("--resume", type=int, help="resume this run id")
    p.add_argument("--start")
    p.add_argument("--end")
    p.add_argument("--flush-every", type=int)
    p.add_argument("--signal-mode", choices=["window", "precomputed"])
    a = p.parse_args(argv)
    params = dict(item.split("=", 1) for item in a.param)

    from tradelab.app import build

    app = build()
    args = PaperArgs(a.strategy, a.source, a.symbol, params, a.speed, a.account, a.db, a.resume,
                     a.start, a.end, a.flush_every, a.signal_mode)
    try:
        engine = build_paper(app, args)
    except TradelabError as exc:  # e.g. the run is owned by another live engine
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    print(f"run_id={engine.run_id}", flush=True)
    try:
        result = engine.run()
    except RunHalted as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 3
    print(f"status={result.stopped} bars={result.bars} equity={result.equity} fills={len(result.fills)}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
