"""``tradelab parity --run RUN``: the drift of a stored run from research (see :mod:`tradelab.drift`).

Called from the ``parity`` command in :mod:`tradelab.cli.engine_cmd`. Exit
codes: 0 when the drift is within the threshold, 1 when it is above it (after
the alert was handed to the notification channels), 2 on an error (unknown
run, no recorded bars, unreachable store).
"""

from __future__ import annotations

from typing import Any

import typer

from tradelab.cli._app import build_app, emit_json, fail
from tradelab.cli._run_options import stored_execution, stored_options
from tradelab.errors import TradelabError

THRESHOLD_HELP = "with --run: alert and exit 1 above this drift (fraction of starting equity; " \
                 "default [live] drift_threshold)"
RUN_HELP = ("compare stored run RUN with research over the bars it received (the drift report), "
            "with the options the run was started with")


def run_parity(run_id: int, ex: Any, *, threshold: float | None = None, source: str | None = None,
               db: str | None = None, as_json: bool = False, trade: Any = None) -> None:
    """Print the drift report of ``run_id``; alert and exit 1 above the threshold.

    Parameters
    ----------
    run_id
        The stored run.
    ex
        The command's :class:`~tradelab.cli._options.ExecOptions`. Research replays the
        run with the execution convention stored with it (a flag given with another
        value exits 2); these, on top of ``[research]``, apply only to a run started
        before it was stored.
    threshold
        Overrides ``[live] drift_threshold``.
    source
        Compare the run's bars with this source instead of the run's own.
    db
        Store URL overriding ``[store] url``.
    as_json
        One JSON object instead of the text summary.
    trade
        The command's :class:`~tradelab.cli._options.TradeOptions`. Research replays
        the run with the options stored with it (a flag given with another value exits
        2, see :func:`tradelab.cli._run_options.stored_options`); these apply only to a
        run started before they were stored (default: the strategy's own).
    """
    from tradelab.drift_run import check_run

    if threshold is not None and not threshold >= 0:
        fail(f"--threshold {threshold!r}: must be >= 0")
    a = build_app()
    try:
        store = a.open_store(db)
    except Exception as exc:  # a bad URL or unreachable server: one line, exit 2
        fail(f"store: {type(exc).__name__}: {exc}")
    trade = stored_options(store, run_id, trade) or trade
    kept = stored_execution(store, run_id, ex)  # as the run was started, flags checked
    try:
        keywords = None if trade is None else {
            "direction": trade.direction, "sl": trade.sl, "tp": trade.tp, "trail": trade.trail,
            "time_stop": trade.time_stop}
        report, queued = check_run(a, run_id, store=store,
                                   execution=kept or ex.apply(a.execution),
                                   threshold=threshold, source=source, trade=keywords)
    except (TradelabError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        emit_json({**report.to_dict(), "alerted": queued})
    else:
        typer.echo(str(report))
    if report.exceeded:
        raise typer.Exit(1)


__all__ = ["RUN_HELP", "THRESHOLD_HELP", "run_parity"]
