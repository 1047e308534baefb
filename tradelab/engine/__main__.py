"""``python -m tradelab.engine STRATEGY [--resume RUN] ...``: a paper run without the CLI layer.

Prints ``run_id=<id>`` first (flushed) so a supervising process knows what to resume.
"""

from __future__ import annotations

import argparse
import sys

from tradelab.engine.session import PaperArgs, build_paper


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tradelab.engine")
    p.add_argument("strategy")
    p.add_argument("--source", default="sample")
    p.add_argument("--symbol", default="SPX")
    p.add_argument("--param", action="append", default=[])
    p.add_argument("--speed", default="max")
    p.add_argument("--account", default="paper")
    p.add_argument("--db", required=True)
    p.add_argument("--resume", type=int)
    p.add_argument("--start")
    p.add_argument("--end")
    p.add_argument("--flush-every", type=int, default=50)
    p.add_argument("--signal-mode", default="window")
    a = p.parse_args(argv)
    params = dict(item.split("=", 1) for item in a.param)
    speed = a.speed if a.speed == "max" else float(a.speed)
    args = PaperArgs(a.strategy, a.source, a.symbol, params, speed, a.account, a.db, a.resume, a.start,
                     a.end, a.flush_every, a.signal_mode)
    engine = build_paper(args)
    print(f"run_id={engine.run_id}", flush=True)
    result = engine.run()
    print(f"status={result.stopped} bars={result.bars} equity={result.equity} fills={len(result.fills)}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
