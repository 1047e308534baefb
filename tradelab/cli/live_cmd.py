"""``tradelab live``: the paper session's engine, wired to a real venue.

Everything but the broker is the paper session's (:func:`tradelab.cli.engine_cmd.trade`):
the same strategy code, feed choices, risk rules, kill switch, store and
notifications. Three locks stand between a typo and a real order: ``[live]
enabled = true`` in the configuration, ``--confirm`` on the command line, and a
strategy that passes ``tradelab check`` (``--force`` overrides only the last).
"""

from __future__ import annotations

import typer

from tradelab.cli._app import app, build_app, fail, parse_params
from tradelab.cli._options import (
    DATA,
    EXEC,
    JSON,
    TRADE,
    DataOptions,
    ExecOptions,
    TradeOptions,
    with_options,
)
from tradelab.cli.engine_cmd import (
    DB_HELP,
    FEED_HELP,
    SYMBOLS_HELP,
    UNIVERSE_HELP,
    TradeRequest,
    trade,
)

LIVE_BROKERS = ("ccxt", "alpaca")


@app.command("live")
@with_options
def live(
    strategy: str = typer.Argument(..., help="strategy name"),
    broker: str = typer.Option(..., "--broker", help="the venue adapter: ccxt or alpaca"),
    data: DataOptions = DATA,
    param: list[str] = typer.Option(None, "--param", "-p", help="NAME=VALUE, repeatable"),
    ex: ExecOptions = EXEC,
    sides: TradeOptions = TRADE,
    feed: str = typer.Option("replay", "--feed", help=FEED_HELP),
    speed: str = typer.Option("max", help="replayed feed only: 'max' or bars per second"),
    account: str = typer.Option(None, help="account name in the store (default [engine] account)"),
    db: str = typer.Option(None, help=DB_HELP),
    resume: int = typer.Option(None, help=(
        "resume this run id after a crash (reconciled first), with the options it was started "
        "with (stored with it)")),
    adopt: bool = typer.Option(False, "--adopt", help=(
        "at start, take the venue's positions where they differ from the store "
        "(otherwise a mismatch refuses to start)")),
    confirm: bool = typer.Option(False, "--confirm", help="yes, send real orders to the venue"),
    force: bool = typer.Option(False, "--force", help="run even if `tradelab check` fails"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bar on stderr"),
    as_json: bool = JSON,
    universe: str = typer.Option(None, "--universe", metavar="NAME", help=UNIVERSE_HELP),
    symbols: str = typer.Option(None, "--symbols", metavar="A,B,...", help=SYMBOLS_HELP),
) -> None:
    """Trade a strategy live through a venue ([live] enabled = true and --confirm required).

    A portfolio strategy trades its universe (or ``--universe``/``--symbols``) on a live
    ``--feed``, sized at each decision's closes, sells first
    (:mod:`tradelab.engine.live_rebalance`); ``--resume`` continues it after a crash
    (:mod:`tradelab.engine.live_resume`)."""
    if broker not in LIVE_BROKERS:
        fail(f"--broker {broker!r}: expected one of {', '.join(LIVE_BROKERS)} "
             "(`tradelab paper` runs the paper broker)")
    a = build_app()
    settings = a.settings
    if not settings.live.enabled:
        fail("live trading is off: set [live] enabled = true in config/tradelab.toml "
             "(or TRADELAB__LIVE__ENABLED=true) to allow it")
    if not confirm:
        live_ = settings.live
        where = live_.base_url or ("the venue's sandbox" if live_.sandbox else "the venue, with REAL money")
        fail(f"add --confirm to send orders through {broker} to {where}")
    from tradelab.cli import portfolio_engine_cmd as pe

    cls = pe.portfolio_class(a, strategy, universe, symbols)
    if cls is not None:
        # --resume: reconciled first, the decision in progress finished (engine.live_resume)
        return pe.paper(a, cls, parse_params(param), data, ex, sides, universe, symbols,
                        account=account, db=db, speed=speed, as_json=as_json, force=force,
                        feed=feed, broker=broker, adopt=adopt, resume=resume)
    trade(TradeRequest(strategy, data, param, ex, speed, feed, account, db, resume, None, force,
                       progress, as_json, broker=broker, adopt=adopt, sides=sides, app=a))
