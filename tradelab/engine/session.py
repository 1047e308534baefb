"""Build and run a paper session from plain arguments (shared by the CLI and ``python -m``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradelab.engine.feed import ReplayFeed
from tradelab.engine.loop import Engine, EngineConfig, EngineResult
from tradelab.execution import Execution


@dataclass
class PaperArgs:
    strategy: str
    source: str = "sample"
    symbol: str = "SPX"
    params: dict | None = None
    speed: str | float = "max"
    account: str = "paper"
    db: str = "sqlite:///var/tradelab.db"
    resume: int | None = None
    start: str | None = None
    end: str | None = None
    flush_every: int = 50
    signal_mode: str = "window"
    fill: str | None = None
    fractional: bool | None = None


def load_bars(source: str, symbol: str, start: str | None = None, end: str | None = None) -> Any:
    """Bars through the app's market-data service, or the sample source if it is not wired yet."""
    if source == "sample":
        from tradelab.data.sample import SampleSource

        return SampleSource().load(symbol, start=start, end=end)
    from tradelab.app import build

    return build().bars(symbol, source=source, start=start, end=end)


def make_strategy(name: str, params: dict | None) -> Any:
    from tradelab.app import build_registry
    from tradelab.config import load_config

    return build_registry(load_config()).create(name, **(params or {}))


def run_paper(args: PaperArgs, on_bar: Any = None, store: Any = None) -> tuple[Engine, EngineResult]:
    """Start (or resume) a persisted paper run on a replay of ``args.source`` bars."""
    engine = build_paper(args, store)
    return engine, engine.run(on_bar)


def build_paper(args: PaperArgs, store: Any = None) -> Engine:
    """The engine for a persisted paper run (new, or resumed when ``args.resume`` is set)."""
    from tradelab.store import Store

    strategy = make_strategy(args.strategy, args.params)
    bars = load_bars(args.source, args.symbol, args.start, args.end)
    execution = Execution(**{k: v for k, v in {"fill": args.fill, "fractional": args.fractional}.items()
                             if v is not None})
    if store is None:
        if args.db.startswith("sqlite:///") and not args.db.startswith("sqlite:////"):
            Path(args.db.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        store = Store(args.db)
        store.upgrade()
    engine = Engine([(strategy, args.symbol)], ReplayFeed(bars, args.symbol, speed=args.speed),
                    execution, store=store, resume=args.resume,
                    config=EngineConfig(account=args.account, flush_every=args.flush_every,
                                        signal_mode=args.signal_mode),
                    run_info={"strategy": args.strategy, "symbol": args.symbol, "source": args.source,
                              "mode": "replay", "params": strategy.params})
    return engine
