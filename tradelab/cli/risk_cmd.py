"""``tradelab risk halt|resume|status``: an account's kill switch, from the store.

``--db URL`` overrides ``[store] url`` for one command.
"""

from __future__ import annotations

from typing import Any

import typer

from tradelab.cli._app import app, build_app, emit_json, fail
from tradelab.cli.engine_cmd import DB_HELP, _store

risk_app = typer.Typer(help="Kill switch: halt or resume trading on an account.", no_args_is_help=True)
app.add_typer(risk_app, name="risk")


@risk_app.command("halt")
def halt(account: str = typer.Option(None, help="account (default [engine] account)"),
         reason: str = typer.Option("operator halt"),
         flatten: bool = typer.Option(False, "--flatten", help="also close positions"),
         db: str = typer.Option(None, help=DB_HELP)) -> None:
    """Engage the kill switch: no new orders leave until `risk resume`."""
    from tradelab.risk.manager import FLATTEN_MARK

    _set(account, True, (FLATTEN_MARK if flatten else "") + reason, db)


@risk_app.command("resume")
def resume_(account: str = typer.Option(None, help="account (default [engine] account)"),
            reason: str = typer.Option("operator resume"),
            db: str = typer.Option(None, help=DB_HELP)) -> None:
    """Release the kill switch."""
    _set(account, False, reason, db)


def _set(account: str | None, engaged: bool, reason: str, db: str | None) -> None:
    import getpass

    from tradelab.clock import LiveClock

    a = build_app()
    account = account or a.settings.engine.account
    store = _store(a, db)
    _known_account(store, account)
    with store.transaction() as tx:
        tx.lock_account(account)
        tx.set_kill_switch(account, engaged, reason, f"operator:{getpass.getuser()}", LiveClock().now())
    typer.echo(f"{account}: kill switch {'ENGAGED' if engaged else 'released'} ({reason})")


def _known_account(store: Any, account: str) -> None:
    """Exit 2 on an account the store does not hold, naming those it does and how one
    comes to be (its first run creates it)."""
    from tradelab.store import mask_url

    if store.get_account(account) is None:
        names = store.account_names()
        fail(f"unknown account {account!r} in {mask_url(store.url)}; accounts: "
             f"{', '.join(names) or '(none yet)'}. An account is created by its first run "
             "(tradelab paper or live --account NAME, or a job); --account or --db picks "
             "another")


@risk_app.command("status")
def status(account: str = typer.Option(None, help="account (default [engine] account)"),
           db: str = typer.Option(None, help=DB_HELP),
           as_json: bool = typer.Option(False, "--json")) -> None:
    """Kill-switch state and the latest risk events of an account."""
    a = build_app()
    account = account or a.settings.engine.account
    store = _store(a, db)
    _known_account(store, account)
    ks = store.kill_switch(account)
    events = store.risk_events(account)[-10:]
    from tradelab.store.shared_repo import read_view

    with store.transaction() as tx:  # what the account-wide rules see (all engines on it)
        view = read_view(tx, tx._account_id(account))
    shared = {"equity": view.equity, "gross_exposure": view.gross_exposure,
              "peak_equity": view.peak_equity, "day_start_equity": view.day_start_equity,
              "open_orders": sum(1 for o in store.open_orders(account))}
    if as_json:
        emit_json({"account": account, "engaged": ks.engaged, "reason": ks.reason, "by": ks.by,
                   "at": ks.at, **shared, "recent_risk_events": [
                       {"rule": e.rule, "severity": e.severity, "message": e.message, "at": e.at,
                        "strategy": e.strategy} for e in events]})
        return
    typer.echo(f"{account}: {'HALTED' if ks.engaged else 'trading'}"
               + (f" ({ks.reason}, by {ks.by} at {ks.at})" if ks.at else ""))
    typer.echo(f"  equity {view.equity:,.2f}  gross exposure {view.gross_exposure:,.2f} "
               f"(open orders counted: {shared['open_orders']})"
               + (f"  peak {view.peak_equity:,.2f}  day start {view.day_start_equity:,.2f}"
                  if view.peak_equity is not None else ""))
    for e in events:
        typer.echo(f"  {e.at:%Y-%m-%d %H:%M} {e.severity:8} {e.rule}: {e.message}")
