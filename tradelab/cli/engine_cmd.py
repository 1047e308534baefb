"""``tradelab paper``, ``tradelab parity`` and ``tradelab risk halt|resume|status``."""

from __future__ import annotations

import typer

from tradelab.cli._app import app, emit_json, fail, parse_params
from tradelab.errors import TradelabError

risk_app = typer.Typer(help="Kill switch: halt or resume trading on an account.", no_args_is_help=True)
app.add_typer(risk_app, name="risk")
DEFAULT_DB = "sqlite:///var/tradelab.db"


def _store(db: str):  # type: ignore[no-untyped-def]
    from tradelab.store import Store

    try:
        store = Store(db)
        store.upgrade()
    except Exception as exc:  # a bad URL or unreachable server: one line, exit 2
        fail(f"store {db}: {exc}")
    return store


@app.command("paper")
def paper(
    strategy: str = typer.Argument(..., help="strategy name"),
    source: str = typer.Option("sample", help="data source replayed as a live feed"),
    symbol: str = typer.Option("SPX", help="symbol"),
    param: list[str] = typer.Option(None, "--param", "-p", help="NAME=VALUE, repeatable"),
    speed: str = typer.Option("max", help="'max' or bars per second"),
    account: str = typer.Option("paper", help="paper account name"),
    db: str = typer.Option(DEFAULT_DB, help="store URL (SQLite file or PostgreSQL)"),
    resume: int = typer.Option(None, help="resume this run id after a crash"),
    start: str = typer.Option(None, help="first bar date"),
    end: str = typer.Option(None, help="last bar date"),
) -> None:
    """Paper-trade a strategy on a replayed feed, persisting orders, fills and equity."""
    from tqdm import tqdm

    from tradelab.engine.session import PaperArgs, build_paper

    try:
        rate: str | float = speed if speed == "max" else float(speed)
    except ValueError:
        fail(f"--speed {speed!r}: expected 'max' or a number of bars per second")
    args = PaperArgs(strategy, source, symbol, parse_params(param), rate, account, db, resume, start, end)
    try:
        engine = build_paper(args, _store(db))
        bar = tqdm(total=len(engine.feed), unit="bar", desc=f"{strategy} {symbol}", leave=False)
        result = engine.run(on_bar=lambda _b: bar.update())
        bar.close()
    except (TradelabError, ValueError) as exc:
        fail(str(exc))
    risk_events = len(result.risk_alerts)
    typer.echo(f"run {result.run_id} ({result.stopped}) on account {result.account}: {result.bars} bars"
               + (f", resumed after {result.resumed_from:%Y-%m-%d}" if result.resumed_from else ""))
    typer.echo(f"  equity {float(result.equity):,.2f} (return {result.total_return:+.2%}), "
               f"trades {len(result.fills)}, risk events {risk_events}")
    from tradelab.store import mask_url

    typer.echo(f"  stored in {mask_url(db)} (run id {result.run_id})")


@app.command("parity")
def parity(
    strategy: str = typer.Argument(..., help="strategy name"),
    source: str = typer.Option("sample", help="data source"),
    symbol: str = typer.Option("SPX", help="symbol"),
    param: list[str] = typer.Option(None, "--param", "-p", help="NAME=VALUE, repeatable"),
    fill: str = typer.Option(None, help="next_open or close (default from config)"),
    fractional: bool = typer.Option(None, "--fractional/--whole", help="unit rounding"),
    signal_mode: str = typer.Option("window", help="window (per bar) or precomputed"),
) -> None:
    """Backtest and engine replay on the same bars: exit 1 on any divergence."""
    from tradelab.engine.parity import compare
    from tradelab.engine.session import load_bars, make_strategy
    from tradelab.execution import Execution

    try:
        strat = make_strategy(strategy, parse_params(param))
        bars = load_bars(source, symbol)
        given = {k: v for k, v in {"fill": fill, "fractional": fractional}.items() if v is not None}
        report = compare(strat, bars, Execution(**given), symbol, signal_mode=signal_mode)
    except (TradelabError, ValueError) as exc:
        fail(str(exc))
    typer.echo(str(report))
    if not report.ok:
        raise typer.Exit(1)


@risk_app.command("halt")
def halt(account: str = typer.Option("paper"), reason: str = typer.Option("operator halt"),
         flatten: bool = typer.Option(False, "--flatten", help="also close positions"),
         db: str = typer.Option(DEFAULT_DB)) -> None:
    """Engage the kill switch: no new orders leave until `risk resume`."""
    _set(account, True, ("[flatten] " if flatten else "") + reason, db)


@risk_app.command("resume")
def resume_(account: str = typer.Option("paper"), reason: str = typer.Option("operator resume"),
            db: str = typer.Option(DEFAULT_DB)) -> None:
    """Release the kill switch."""
    _set(account, False, reason, db)


def _set(account: str, engaged: bool, reason: str, db: str) -> None:
    import getpass

    from tradelab.clock import LiveClock

    store = _store(db)
    if store.get_account(account) is None:
        fail(f"unknown account {account!r}")
    with store.transaction() as tx:
        tx.lock_account(account)
        tx.set_kill_switch(account, engaged, reason, f"operator:{getpass.getuser()}", LiveClock().now())
    typer.echo(f"{account}: kill switch {'ENGAGED' if engaged else 'released'} ({reason})")


@risk_app.command("status")
def status(account: str = typer.Option("paper"), db: str = typer.Option(DEFAULT_DB),
           as_json: bool = typer.Option(False, "--json")) -> None:
    """Kill-switch state and the latest risk events of an account."""
    store = _store(db)
    if store.get_account(account) is None:
        fail(f"unknown account {account!r}")
    ks = store.kill_switch(account)
    events = store.risk_events(account)[-10:]
    if as_json:
        emit_json({"account": account, "engaged": ks.engaged, "reason": ks.reason, "by": ks.by,
                   "at": ks.at, "recent_risk_events": [vars(e) if hasattr(e, "__dict__") else
                                                       {"rule": e.rule, "severity": e.severity,
                                                        "message": e.message, "at": e.at}
                                                       for e in events]})
        return
    typer.echo(f"{account}: {'HALTED' if ks.engaged else 'trading'}"
               + (f" ({ks.reason}, by {ks.by} at {ks.at})" if ks.at else ""))
    for e in events:
        typer.echo(f"  {e.at:%Y-%m-%d %H:%M} {e.severity:8} {e.rule}: {e.message}")
