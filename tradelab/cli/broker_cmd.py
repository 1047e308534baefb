"""``tradelab broker status|orders|positions|reconcile``: the venue, seen from the store.

The broker is the one ``[engine] broker`` names (or ``--broker``), built by the
composition root's registry with the configured credentials (from the
environment, never printed). Nothing here sends or cancels an order.
``reconcile`` compares the store with the venue (report only; the engine books
what the venue did at its next start), stores the outcome and exits 1 when a
position differs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import typer

from tradelab.cli._app import app, emit_json, fail, settings

broker_app = typer.Typer(help="The venue: connectivity, balances, open orders, positions, and "
                              "reconciliation with the store (nothing here sends an order).",
                         no_args_is_help=True)
app.add_typer(broker_app, name="broker")

BROKER = typer.Option(None, "--broker", help="the venue by name (default: [engine] broker)")
ACCOUNT = typer.Option(None, "--account", help="the account in the store (default: [engine] account)")
DB = typer.Option(None, "--db", help="store URL (default: [store] url)")
SYMBOL = typer.Option(None, "--symbol", help="a symbol this account trades (repeatable; default: "
                                              "those the store holds for the account)")
QUOTE = typer.Option(None, "--quote", help="the venue asset compared with the account's cash "
                                            "(default: the venue's own, else [live] quote)")
JSON = typer.Option(False, "--json", help="machine-readable output")


@dataclass
class _Venue:
    cfg: Any
    name: str
    account: str
    broker: Any
    store: Any
    symbols: set[str]


def _clean(text: str) -> str:
    from tradelab.monitor.redact import redact_text

    return redact_text(text)


def _store_symbols(store: Any, account: str) -> set[str]:
    from tradelab.store.errors import UnknownAccountError

    try:
        state = store.account_state(account)
    except UnknownAccountError:
        return set()
    return {p.symbol for p in state.positions if p.quantity} | {o.symbol for o in state.open_orders}


@contextmanager
def _venue(broker: str | None, account: str | None, db: str | None,
           symbols: list[str] | None) -> Iterator[_Venue]:
    import os

    from tradelab.app import build_store, make_broker
    from tradelab.execution import Execution
    from tradelab.monitor.redact import register_environment, register_settings

    cfg = settings()
    # Venue keys live in the environment: masked in whatever a venue's error says.
    register_settings(cfg)
    register_environment(os.environ)
    name = broker or cfg.engine.broker
    acct = account or cfg.engine.account
    try:
        store = build_store(cfg, db)
    except Exception as exc:
        fail(_clean(f"store: {type(exc).__name__}: {exc}"))
    try:
        wanted = set(symbols or ()) or _store_symbols(store, acct)
        try:
            venue = make_broker(name, Execution.from_settings(cfg.research), wanted, cfg.engine, cfg)
        except Exception as exc:
            fail(_clean(f"broker {name}: {exc}"))
        try:
            yield _Venue(cfg, name, acct, venue, store, wanted)
        finally:
            close = getattr(venue, "close", None)
            if callable(close):
                close()
    finally:
        store.close()


def _ask(what: str, call: Any) -> Any:
    """A venue call, or exit 3 with the venue's error (credentials masked)."""
    try:
        return call()
    except Exception as exc:
        fail(_clean(f"venue did not answer ({what}): {type(exc).__name__}: {exc}"), code=3)


def _quote(v: _Venue, balances: dict[str, Any], given: str | None) -> str | None:
    from tradelab.reconcile import quote_asset_of

    return given or quote_asset_of(v.broker, balances, v.cfg.live.quote)


def _order_row(r: Any) -> dict[str, Any]:
    from tradelab.reconcile import is_ours

    return {"client_order_id": r.client_order_id, "venue_order_id": r.venue_order_id,
            "ours": is_ours(r.client_order_id), "symbol": r.symbol, "side": r.side,
            "status": r.status, "quantity": r.quantity, "filled": r.cum_quantity,
            "avg_price": r.avg_price}


def _last(store: Any, account: str, n: int = 1) -> list[Any]:
    try:
        return list(store.reconcile.reconciliations(account, limit=n))
    except Exception:  # a store at an older schema: nothing to show
        return []


def _record_dict(r: Any) -> dict[str, Any]:
    return {"id": r.id, "at": r.at.isoformat(), "venue": r.venue, "trigger": r.trigger, "ok": r.ok,
            "adopted": r.adopted, "booked_fills": r.booked_fills, "run_id": r.run_id,
            "findings": r.findings}


def _record_line(r: Any) -> str:
    head = "ok" if r.ok else "MISMATCH"
    run = f" run {r.run_id}" if r.run_id is not None else ""
    return (f"#{r.id} {r.at:%Y-%m-%d %H:%M:%S} {r.venue} {r.trigger}{run}: {head}, "
            f"{len(r.findings)} finding(s), {r.booked_fills} fill(s) booked"
            + (", adopted" if r.adopted else ""))


@broker_app.command("status")
def status(broker: str | None = BROKER, account: str | None = ACCOUNT, db: str | None = DB,
           symbol: list[str] | None = SYMBOL, json_out: bool = JSON) -> None:
    """The venue's name, whether it answers, balances, open orders and the last reconciliation."""
    with _venue(broker, account, db, symbol) as v:
        error = None
        balances: dict[str, Any] = {}
        opened: list[Any] = []
        try:
            balances = v.broker.balances()
            opened = v.broker.open_orders()
        except Exception as exc:
            error = _clean(f"{type(exc).__name__}: {exc}")
        last = _last(v.store, v.account)
        from tradelab.reconcile import is_ours

        ours = sum(1 for r in opened if is_ours(r.client_order_id))
        out = {"venue": getattr(v.broker, "name", v.name), "broker": v.name, "account": v.account,
               "simulated": bool(getattr(v.broker, "simulated", False)),
               "connected": error is None, "error": error,
               "balances": {k: {"free": b.free, "locked": b.locked, "total": b.total}
                            for k, b in balances.items()},
               "open_orders": {"ours": ours, "foreign": len(opened) - ours},
               "last_reconciliation": _record_dict(last[0]) if last else None}
    if json_out:
        emit_json(out)
    else:
        typer.echo(f"venue {out['venue']} (--broker {v.name}), account {v.account}"
                   + (" [simulated: a fresh in-process venue]" if out["simulated"] else ""))
        typer.echo(f"  connected: {'yes' if error is None else 'no: ' + error}")
        for asset, b in sorted(balances.items()):
            typer.echo(f"  {asset}: free {b.free}, locked {b.locked}")
        typer.echo(f"  open orders: {ours} ours, {len(opened) - ours} foreign")
        typer.echo("  last reconciliation: " + (_record_line(last[0]) if last else "none stored"))
    if error is not None:
        raise typer.Exit(3)


@broker_app.command("orders")
def orders(broker: str | None = BROKER, account: str | None = ACCOUNT, db: str | None = DB,
           symbol: list[str] | None = SYMBOL, json_out: bool = JSON) -> None:
    """The venue's open orders: ours (client id ``tl-...``) and foreign (placed elsewhere)."""
    with _venue(broker, account, db, symbol) as v:
        rows = [_order_row(r) for r in _ask("open orders", v.broker.open_orders)]
    if json_out:
        emit_json(rows)
        return
    if not rows:
        typer.echo(f"no open orders at {v.name}")
    for r in rows:
        typer.echo(f"{'ours   ' if r['ours'] else 'foreign'} {r['client_order_id'] or '-'} "
                   f"({r['venue_order_id']}) {r['side']} {r['quantity']} {r['symbol']} "
                   f"{r['status']}, filled {r['filled']}")


@broker_app.command("positions")
def positions(broker: str | None = BROKER, account: str | None = ACCOUNT, db: str | None = DB,
              symbol: list[str] | None = SYMBOL, json_out: bool = JSON) -> None:
    """Positions at the venue and in the store, side by side."""
    from decimal import Decimal

    from tradelab.store.errors import UnknownAccountError

    with _venue(broker, account, db, symbol) as v:
        held = _ask("positions", v.broker.positions)
        try:
            stored = {p.symbol: p.quantity for p in v.store.positions(v.account) if p.quantity}
        except UnknownAccountError:
            stored = {}
    rows = [{"symbol": s, "venue": held.get(s, Decimal(0)), "store": stored.get(s, Decimal(0)),
             "agree": held.get(s, Decimal(0)) == stored.get(s, Decimal(0))}
            for s in sorted(set(held) | set(stored))]
    if json_out:
        emit_json(rows)
        return
    if not rows:
        typer.echo("no positions at the venue or in the store")
    from tradelab.reconcile.model import amount

    for r in rows:
        typer.echo(f"{r['symbol']:<12} venue {amount(r['venue']):>14}  store {amount(r['store']):>14}"
                   + ("" if r["agree"] else "  MISMATCH"))


@broker_app.command("reconcile")
def reconcile(broker: str | None = BROKER, account: str | None = ACCOUNT, db: str | None = DB,
              symbol: list[str] | None = SYMBOL, quote: str | None = QUOTE, json_out: bool = JSON,
              history: int = typer.Option(0, "--history", min=0,
                                          help="list the last N stored reconciliations instead")) -> None:
    """Compare the store with the venue (report only), store the outcome; exit 1 on a mismatch."""
    from tradelab.reconcile import reconcile_store, store_writer
    from tradelab.store.errors import UnknownAccountError

    if history:
        with _venue(broker, account, db, symbol) as v:
            rows = _last(v.store, v.account, history)
        if json_out:
            emit_json([_record_dict(r) for r in rows])
        else:
            for r in rows:
                typer.echo(_record_line(r))
                for f in r.findings:
                    typer.echo(f"    {f['kind']}: {f['detail']}")
            if not rows:
                typer.echo(f"no reconciliations stored for account {v.account}")
        return
    stored_id = None
    with _venue(broker, account, db, symbol) as v:
        balances = _ask("balances", v.broker.balances)
        outcome = _ask("reconcile", lambda: reconcile_store(
            v.broker, v.store, v.account, venue=v.name, quote_asset=_quote(v, balances, quote),
            symbols=v.symbols or None))
        try:
            stored_id = store_writer(v.store, v.account)(outcome)
        except UnknownAccountError:
            note = f"not stored: the store has no account {v.account!r}"
        else:
            note = f"stored as reconciliation #{stored_id}"
    if json_out:
        emit_json({**outcome.to_dict(), "account": v.account, "id": stored_id})
    else:
        typer.echo(outcome.summary())
        for f in outcome.findings:
            typer.echo(f"  {f.kind}: {f.detail}")
        typer.echo(f"  ({note})")
        if getattr(v.broker, "simulated", False):
            typer.echo(f"  ({v.name} is simulated: this process's venue starts empty with [research] "
                       "cash; a run rebuilds its own from the store)")
    if not outcome.ok:
        raise typer.Exit(1)
