"""A stored run's trade options on the command line (``--resume RUN``, ``parity --run RUN``).

A run keeps the options it was started with (``--direction``, ``--sl``, ``--tp``,
``--trail``, ``--time-stop``, resolved against the strategy's own; see
:meth:`tradelab.store.records.RunRecord.trade`). Commands that continue or judge
the run use those, so a forgotten flag cannot make them silently diverge; a flag
given with another value is refused (exit 2) naming the flag and both values.
"""

from __future__ import annotations

from typing import Any

from tradelab.cli._app import fail
from tradelab.cli._options import TradeOptions

__all__ = ["stored_options", "stored_sides"]


def stored_options(store: Any, run_id: int, given: TradeOptions | None) -> TradeOptions | None:
    """Run ``run_id``'s stored trade options, or ``None`` for a run without any (an
    unknown run, or one started before they were stored: ``given`` applies).

    Exits 2 when ``given`` sets an option to another value than the stored one.
    """
    run = store.get_run(run_id)
    stored = run.trade() if run is not None else None
    if stored is None:
        return None
    for name, value in stored.items():
        asked = getattr(given, name, None) if given is not None else None
        if asked is not None and asked != value:
            flag = "--" + name.replace("_", "-")
            fail(f"{flag} {asked}: run {run_id} was started with "
                 + (f"{flag} {value}" if value is not None else f"no {flag}")
                 + f" (its trade options are stored with it: drop {flag}, or start a new run)")
    return TradeOptions(**stored)


def stored_sides(options: TradeOptions) -> tuple[str, Any]:
    """``(direction, stops)`` exactly as stored (not re-resolved against the strategy's
    current declarations, which may have changed since the run started)."""
    from tradelab.strategy.exits import Stops

    assert options.direction is not None  # stored runs always have one
    return options.direction, Stops(options.sl, options.tp, options.trail, options.time_stop)
