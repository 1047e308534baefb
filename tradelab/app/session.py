"""Paper sessions from plain arguments, through the composition root.

Shared by ``tradelab paper``, ``tradelab parity``, ``tradelab risk`` and
``python -m tradelab.engine``: everything concrete (bars and their cache, the
strategy registry, the execution convention, the store, ``[engine]`` and
``[risk]`` settings) comes from :func:`tradelab.app.build`; the only
overrides are the ones a command line names explicitly (``--db``,
``--account``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tradelab.engine.loop import Engine

if TYPE_CHECKING:
    import pandas as pd

    from tradelab.execution import Execution
    from tradelab.store import Store
    from tradelab.strategy.exits import Stops


@dataclass
class PaperArgs:
    """What a command line may say about a paper run; ``None`` means "from configuration"."""

    strategy: str
    source: str | None = None
    symbol: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    speed: str | float = "max"
    account: str | None = None
    db: str | None = None
    resume: int | None = None
    start: str | None = None
    end: str | None = None
    flush_every: int | None = None
    signal_mode: str | None = None
    #: The execution convention (default: ``[research]``) and the bars to replay
    #: (default: ``source``/``symbol`` from ``start`` to ``end``), e.g. from ``--csv``.
    execution: Execution | None = None
    bars: pd.DataFrame | None = None
    #: The side traded and the declared exits (default: the strategy's own).
    direction: str | None = None
    stops: Stops | None = None


def parse_speed(speed: str | float) -> str | float:
    """``"max"`` or a positive number of bars per second (ValueError otherwise)."""
    if speed == "max":
        return "max"
    value = float(speed)
    if not value > 0:
        raise ValueError(f"speed {speed!r}: expected 'max' or a positive number of bars per second")
    return value


def store_url(app: Any, db: str | None = None) -> str:
    """The URL a run is stored at, password masked (safe to print)."""
    from tradelab.store import mask_url
    from tradelab.store import store_url as resolve

    return mask_url(resolve(app.settings, db))


def build_paper(app: Any, args: PaperArgs, store: Store | None = None, **venue: Any) -> Engine:
    """The engine for a persisted paper run (new, or resumed when ``args.resume`` is set).

    ``venue`` (``broker=NAME, adopt=...``) makes it a live run through that broker.
    """
    overrides = {k: v for k, v in {"account": args.account, "flush_every": args.flush_every,
                                    "signal_mode": args.signal_mode}.items() if v is not None}
    engine: Engine = app.engine(args.strategy, args.symbol, source=args.source,
                                params=dict(args.params), start=args.start, end=args.end,
                                speed=parse_speed(args.speed), resume=args.resume,
                                store=store, db=args.db, execution=args.execution,
                                bars=args.bars, direction=args.direction, stops=args.stops,
                                **overrides, **venue)
    return engine
