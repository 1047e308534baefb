"""A stored run's options on the command line (``--resume RUN``, ``parity --run RUN``).

A run keeps the options it was started with: its trade options (``--direction``,
``--sl``, ``--tp``, ``--trail``, ``--time-stop``, resolved against the strategy's
own; see :meth:`tradelab.store.records.RunRecord.trade`) and its execution
convention (``--cash``, ``--fees``, ``--fixed-fees``, ``--slippage``, ``--size``,
``--size-type``, ``--fill``, ``--fractional/--whole``, ``--borrow-fee``, resolved
against ``[research]``; see :attr:`tradelab.store.records.RunRecord.execution`).
Commands that continue or judge the run use those, so a forgotten flag (or a
``[research]`` changed since) cannot make them silently diverge; a flag given with
another value is refused (exit 2) naming the flag and both values.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any

from tradelab.cli._app import fail
from tradelab.cli._options import ExecOptions, TradeOptions

if TYPE_CHECKING:
    from tradelab.execution import Execution

__all__ = ["stored_execution", "stored_options", "stored_sides"]


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


def stored_execution(store: Any, run_id: int, given: ExecOptions | None) -> Execution | None:
    """Run ``run_id``'s stored execution convention, or ``None`` for a run without one (an
    unknown run, or one started before it was stored: ``given`` on ``[research]`` applies).

    Exits 2 when ``given`` sets an option to another value than the stored one (a flag
    given with the same value is fine).
    """
    from tradelab.execution import Execution

    run = store.get_run(run_id)
    stored = run.execution if run is not None else None
    if stored is None:
        return None
    kept = Execution(**stored)
    for f in fields(ExecOptions):
        asked, value = getattr(given, f.name, None) if given is not None else None, getattr(kept, f.name)
        if asked is not None and asked != value:
            flag, was = _flag(f.name, asked), _flag(f.name, value)
            fail(f"{flag}: run {run_id} was started with {was} (its execution options are stored "
                 f"with it: drop {flag.split()[0]}, or start a new run)")
    return kept


def _flag(name: str, value: Any) -> str:
    """An execution option as typed: ``--fees 0.001``, ``--fractional`` / ``--whole``."""
    if name == "fractional":
        return "--fractional" if value else "--whole"
    return f"--{name.replace('_', '-')} {value}"
