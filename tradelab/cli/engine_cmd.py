"""``tradelab paper`` and ``tradelab parity`` (``tradelab risk``: :mod:`tradelab.cli.risk_cmd`).

All of them start at the composition root (:func:`tradelab.app.build`): bars,
strategies, execution convention, store, ``[engine]`` and ``[risk]`` come from
configuration; ``--db URL`` overrides ``[store] url`` for one command.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

import typer

from tradelab.cli import drift_cmd
from tradelab.cli._app import app, build_app, emit_json, fail, parse_params
from tradelab.cli._options import (
    DATA,
    EXEC,
    JSON,
    TRADE,
    DataOptions,
    ExecOptions,
    TradeOptions,
    convention,
    with_options,
)
from tradelab.cli._run_options import stored_execution, stored_options, stored_sides
from tradelab.errors import TradelabError

if TYPE_CHECKING:
    from tradelab.interfaces import LiveFeed
    from tradelab.store import Store

DB_HELP = "store URL overriding [store] url (SQLite file or PostgreSQL)"
UNIVERSE_HELP = "a named universe (sp20, kopep) for a portfolio strategy"
SYMBOLS_HELP = "the symbols of a portfolio strategy's universe"
FEED_HELP = ("replay (the --source bars, default), ws://HOST:PORT (websocket; gaps backfilled "
             "from --source), ccxt (the data.ccxt exchange, candles of feeds.ccxt_interval) or "
             "poll (poll --source every feeds.poll_seconds)")


def _store(app_: Any, db: str | None) -> Any:
    from tradelab.store import open_store

    try:
        return open_store(app_.settings, db)
    except Exception as exc:  # a bad URL or unreachable server: one line, exit 2
        from tradelab.app.session import store_url

        fail(f"store {store_url(app_, db)}: {type(exc).__name__}: {exc}")


@app.command("paper")
@with_options
def paper(
    strategy: str = typer.Argument(..., help="strategy name"),
    data: DataOptions = DATA,
    param: list[str] = typer.Option(None, "--param", "-p", help="NAME=VALUE, repeatable"),
    ex: ExecOptions = EXEC,
    sides: TradeOptions = TRADE,
    speed: str = typer.Option("max", help="'max' or bars per second"),
    feed: str = typer.Option("replay", "--feed", help=FEED_HELP),
    account: str = typer.Option(None, help="paper account (default [engine] account)"),
    db: str = typer.Option(None, help=DB_HELP),
    resume: int = typer.Option(None, help="resume this run id after a crash, with the "
                                "options it was started with (stored with it)"),
    signal_mode: str = typer.Option(None, help="window or precomputed (default [engine])"),
    force: bool = typer.Option(False, "--force", help="run even if `tradelab check` fails"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bar on stderr"),
    as_json: bool = JSON,
    universe: str = typer.Option(None, "--universe", metavar="NAME", help=UNIVERSE_HELP),
    symbols: str = typer.Option(None, "--symbols", metavar="A,B,...", help=SYMBOLS_HELP),
) -> None:
    """Paper-trade a strategy on a replayed or live feed, persisting orders, fills and equity.

    A portfolio strategy trades its universe (or ``--universe``/``--symbols``), replayed or
    on the live ``--feed``."""
    from tradelab.cli import portfolio_engine_cmd as pe

    a = build_app()
    cls = pe.portfolio_class(a, strategy, universe, symbols)
    if cls is not None:
        return pe.paper(a, cls, parse_params(param), data, ex, sides, universe, symbols,
                        account=account, db=db, speed=speed, as_json=as_json, force=force,
                        feed=feed, resume=resume)
    trade(TradeRequest(strategy, data, param, ex, speed, feed, account, db, resume, signal_mode, force,
                  progress, as_json, sides=sides, app=a))


@dataclass
class TradeRequest:
    """What ``paper`` and ``live`` were asked for (their options are the same)."""

    strategy: str
    data: DataOptions
    param: list[str] | None
    ex: ExecOptions
    speed: str
    feed: str
    account: str | None
    db: str | None
    resume: int | None
    signal_mode: str | None
    force: bool
    progress: bool
    as_json: bool
    broker: str | None = None
    adopt: bool = False
    sides: TradeOptions | None = None  # --direction, --sl, --tp, --trail, --time-stop
    app: Any = None  # the App when the caller built it already (paper: the portfolio look-up)


def _refuse_halted(store: Any, account: str) -> None:
    # Every order would be denied: say so (exit 2) instead of running a session that cannot trade.
    if store.get_account(account) is None:
        return
    ks = store.kill_switch(account)
    if ks.engaged:
        fail(f"account {account} is halted ({ks.reason}, by {ks.by}); "
             f"`tradelab risk resume --account {account}` lets it trade again")


def require_check(strat: Any, bars: Any, force: bool) -> None:
    """Refuse a strategy that fails ``tradelab check`` (look-ahead, window) unless ``--force``."""
    from tradelab.strategy.lookahead import check_lookahead

    report = check_lookahead(strat, bars)
    if report.ok:
        return
    if force:
        typer.echo(f"warning: running despite a failed check (--force): {report.first}", err=True)
        return
    fail(f"{strat.name} fails `tradelab check`: {report.first} (fix it, or pass --force)")


def trade(o: TradeRequest) -> None:
    """Run a paper or live session (``o.broker`` names a live broker) and print its result."""
    from tqdm import tqdm

    from tradelab.app.session import PaperArgs, build_paper, parse_speed, store_url

    try:
        parse_speed(o.speed)
    except ValueError:
        fail(f"--speed {o.speed!r}: expected 'max' or a positive number of bars per second")
    a = o.app if o.app is not None else build_app()
    data, strategy = o.data, o.strategy
    try:
        strat = a.strategy(strategy, **parse_params(o.param))
        execution = o.ex.apply(a.execution)
        direction, stops = trade_sides(o.sides or TradeOptions(), strat)
        data.check()
    except (TradelabError, ValueError) as exc:
        fail(str(exc))
    if o.broker is not None and execution.borrow_fee:
        fail(f"--borrow-fee {execution.borrow_fee}: a real venue bills borrow itself; the "
             "setting applies to simulated (paper) runs only")
    store = _store(a, o.db)
    if o.resume is not None:  # the run trades with the options it was started with
        kept = stored_options(store, o.resume, o.sides)
        if kept is not None:
            direction, stops = stored_sides(kept)
        execution = stored_execution(store, o.resume, o.ex) or execution
    _refuse_halted(store, o.account or a.settings.engine.account)
    loaded = None
    symbol = data.symbol or a.settings.data.default_symbol
    source = data.source or a.settings.data.default_source
    try:
        from tradelab.app.feeds import build_feed

        if data.csv is not None and o.feed != "replay":
            raise ValueError("--csv replays a file; it cannot be combined with --feed")
        live = build_feed(a, o.feed, symbol, source=data.source, start=data.start, end=data.end)
        if live is None:
            loaded = data.load(a)
            symbol, source = loaded.symbol, loaded.source
            # The data-quality gate judges the bars the run starts from (a CSV's too).
            a.data.last_report = loaded.report
        require_check(strat, loaded.bars if loaded is not None else _check_bars(a, symbol, source),
                      o.force)
        args = PaperArgs(strategy, source, symbol, parse_params(o.param), o.speed, o.account, o.db,
                         o.resume, data.start, data.end, signal_mode=o.signal_mode, execution=execution,
                         bars=None if loaded is None else loaded.bars, direction=direction,
                         stops=stops)
        venue: dict[str, Any] = {} if o.broker is None else {"broker": o.broker, "adopt": o.adopt}
        engine = build_paper(a, args, store, **venue) if live is None \
            else _live_engine(a, args, store, live, **venue)
    except (TradelabError, ValueError) as exc:
        fail(str(exc))
    # Metrics, health endpoints ([monitor] port) and notifications ([notify]) ride
    # on the engine's bus as observers; a slow or dead channel never blocks the loop.
    session = a.session(engine, store=store)
    if session.monitoring.server is not None:
        typer.echo(f"monitoring on {session.monitoring.server.url}/metrics", err=True)
    try:
        total = None if live is not None else len(cast(Any, engine.feed))  # a replay knows its length
        with session, tqdm(total=total, unit="bar", desc=f"{strategy} {symbol}", leave=False,
                           disable=not o.progress or o.as_json, mininterval=0.2) as bar:
            result = engine.run(on_bar=lambda _b: bar.update())
    except (TradelabError, ValueError) as exc:
        fail(str(exc))
    from tradelab.cli._summary import engine_stats
    from tradelab.cli.research_cmd import json_safe, named_counts, print_stats

    last_price = float(loaded.bars["close"].iloc[-1]) if loaded is not None else None
    stats, trades, ppy = engine_stats(result, execution, a.settings.research.periods_per_year,
                                      last_price, loaded.bars["close"] if loaded is not None else None,
                                      reasons=engine.sides.exit_reasons)
    if execution.borrow_fee:  # as a backtest reports them (the paper broker charges them)
        stats.update(borrow_fees=float(getattr(engine.broker, "borrow_paid", 0.0)),
                     borrow_accrued=float(sum(getattr(engine.broker, "borrow_accrued", {}).values(),
                                                 0.0)))
    shown = named_counts(stats, fills=len(result.fills))
    recon = [_recon_json(r) for r in getattr(engine, "reconciliations", [])]
    if o.as_json:
        emit_json(json_safe({"symbol": symbol, "source": source, "strategy": strat.name,
                             "params": strat.params, **shown, "execution": asdict(execution),
                             "direction": direction, "stops": asdict(stops),
                             "per_bar_stops": sorted({k for r in engine.runners.get(symbol, ())
                                                      for k in r.per_bar_stops}),
                             "periods_per_year": ppy, "trades": trades,
                             "orders": [{"time": f.at, "side": f.side, "quantity": float(f.quantity),
                                         "price": float(f.price), "fees": float(f.fees)}
                                        for f in result.fills],
                             "data_quality": loaded.quality() if loaded is not None else {},
                             "run_id": result.run_id,
                             **({} if o.broker is None else {
                                 "broker": engine.broker.name, "reconciliations": recon,
                                 "resolved": getattr(engine.orders, "resolved", 0)})}))
        return
    critical = sum(1 for e in result.risk_alerts if e.severity == "critical")
    typer.echo(f"run {result.run_id} ({result.stopped}) on account {result.account}: {result.bars} bars"
               + (f", resumed after {result.resumed_from:%Y-%m-%d}" if result.resumed_from else ""))
    stop_reason = getattr(engine, "_stop_reason", None)
    if result.stopped == "stopped" and stop_reason:  # e.g. "data quality: ..." or SIGINT
        typer.echo(f"  stopped: {stop_reason}")
    typer.echo(f"  equity {float(result.equity):,.2f} (return {result.total_return:+.2%}), "
               f"round trips {shown['round_trips']}, fills {len(result.fills)}, "
               f"risk events {len(result.risk_alerts)} ({critical} critical)")
    typer.echo(f"  {convention(execution)}")
    if direction != "long" or stops.active:
        typer.echo(f"  direction {direction}, " + describe_stops(stops))
    if live is not None:
        from tradelab.app.feeds import describe

        typer.echo(f"  {describe(live.stats())}")
    if o.broker is not None:
        typer.echo(f"  broker {engine.broker.name}: {len(recon)} reconciliation(s), "
                   f"{sum(r['booked_fills'] for r in recon)} fill(s) booked by them, "
                   f"{sum(len(r['findings']) for r in recon)} finding(s); "
                   f"{getattr(engine.orders, 'resolved', 0)} lost acknowledgement(s) resolved")
    print_stats({k: v for k, v in shown.items() if k not in ("round_trips", "fills")})
    typer.echo(f"  stored in {store_url(a, o.db)} (run id {result.run_id})")


#: A field of Stops as the option that sets it (error messages name what the user typed).
_FLAG = {"sl": "--sl", "tp": "--tp", "trail": "--trail", "time_bars": "--time-stop",
         "direction": "--direction"}


def trade_sides(sides: TradeOptions, strategy: Any) -> tuple[str, Any]:
    """``(direction, stops)`` of a trading command; ValueError names the option."""
    try:
        return sides.resolve(strategy)
    except ValueError as exc:  # "sl = 1.5: ..." → "--sl 1.5: ..."
        message = re.sub(r"\b(sl|tp|trail|time_bars|direction)( = |(?= '))",
                         lambda m: _FLAG[m.group(1)] + (" " if m.group(2) else ""), str(exc))
        raise ValueError(message) from None


def describe_stops(stops: Any) -> str:
    """``stops: sl 3%, tp 6%`` (or ``no stops``) for the text summary."""
    parts = [f"{name} {value:.4g}" for name, value in
             (("sl", stops.sl), ("tp", stops.tp), ("trail", stops.trail)) if value is not None]
    if stops.time_bars is not None:
        parts.append(f"time stop {stops.time_bars} bars")
    return "stops: " + ", ".join(parts) if parts else "no stops"


def _recon_json(r: Any) -> dict[str, Any]:
    return {"trigger": r.trigger, "ok": r.ok, "booked_fills": r.booked_fills, "adopted": r.adopted,
            "findings": [{"kind": f.kind, "symbol": f.symbol, "detail": f.detail} for f in r.findings]}


def _check_bars(app_: Any, symbol: str, source: str) -> Any:
    """Bars to run `tradelab check` on for a live feed: the symbol's history at the source,
    else the shipped sample (causality does not depend on the instrument)."""
    try:
        return app_.bars(symbol, source=source)
    except Exception:
        return app_.bars(app_.settings.data.default_symbol, source="sample")


def _live_engine(app_: Any, args: Any, store: Store, feed: LiveFeed, **venue: Any) -> Any:
    """``build_paper`` with a live feed instead of the replayed source."""
    overrides = {k: v for k, v in {"account": args.account, "flush_every": args.flush_every,
                                    "signal_mode": args.signal_mode}.items() if v is not None}
    return app_.engine(args.strategy, args.symbol, source=args.source, params=dict(args.params),
                       feed=feed, resume=args.resume, store=store, execution=args.execution,
                       direction=args.direction, stops=args.stops, **overrides, **venue)


@app.command("parity")
@with_options
def parity(
    strategy: str = typer.Argument(None, help="strategy name (not with --run)"),
    data: DataOptions = DATA,
    param: list[str] = typer.Option(None, "--param", "-p", help="NAME=VALUE, repeatable"),
    ex: ExecOptions = EXEC,
    sides: TradeOptions = TRADE,
    signal_mode: str = typer.Option("window", help="window (per bar) or precomputed"),
    run: int = typer.Option(None, "--run", help=drift_cmd.RUN_HELP),
    threshold: float = typer.Option(None, "--threshold", help=drift_cmd.THRESHOLD_HELP),
    db: str = typer.Option(None, help=DB_HELP),
    as_json: bool = JSON,
    universe: str = typer.Option(None, "--universe", metavar="NAME", help=UNIVERSE_HELP),
    symbols: str = typer.Option(None, "--symbols", metavar="A,B,...", help=SYMBOLS_HELP),
) -> None:
    """Backtest and engine replay on the same bars: exit 1 on any divergence.

    A portfolio strategy is compared on its universe (or ``--universe``/``--symbols``):
    every fill, and the equity at every time stamp to 1e-9.

    With --run RUN: the stored run against research over the bars it received, the gap
    split by cause (exit 1 and a notification above the drift threshold).
    """
    from tradelab.parity import compare

    if run is not None:  # research replays the run with its stored trade options
        drift_cmd.run_parity(run, ex, threshold=threshold, source=data.source, db=db, as_json=as_json,
                             trade=sides)
        return
    if strategy is None:
        fail("give a STRATEGY, or --run RUN for a stored run")
    a = build_app()
    from tradelab.cli import portfolio_engine_cmd as pe

    cls = pe.portfolio_class(a, strategy, universe, symbols)
    if cls is not None:
        return pe.parity(a, cls, parse_params(param), data, ex, sides, universe, symbols,
                         as_json=as_json)
    try:
        strat = a.strategy(strategy, **parse_params(param))
        execution = ex.apply(a.execution)
        direction, stops = trade_sides(sides, strat)
        loaded = data.load(a)
        report = compare(strat, loaded.bars, execution, loaded.symbol, signal_mode=signal_mode,
                         direction=direction, stops=stops)
    except (TradelabError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        emit_json({"symbol": loaded.symbol, "source": loaded.source, **report.to_dict(),
                   "data_quality": loaded.quality()})
    else:
        typer.echo(str(report))
    if not report.ok:
        raise typer.Exit(1)
