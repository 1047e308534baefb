"""``tradelab demo``: the research loop end to end on the embedded real data, then a live-looking
paper session: a loopback replay server misbehaving on purpose, traded through a websocket feed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from tradelab.cli._app import app, build_app

LIVE_BARS, LIVE_SPEED = 300, 100.0   # ~3 s of streaming
VENUE_BARS = 160                     # 40 of history, then 120 traded live (~6 s)
SHOWN = ["total_return", "cagr", "sharpe", "sortino", "max_drawdown", "win_rate", "n_trades",
         "exposure", "final_equity"]


@app.command("demo")
def demo(
    symbol: str = typer.Option(None, help="symbol of the default source (default from config)"),
    report: Path = typer.Option(None, help="HTML report path (default <reports_dir>/demo.html)"),
    live: bool = typer.Option(True, "--live/--no-live",
                              help="also paper-trade sma_cross over a faulty loopback websocket"),
    venue: bool = typer.Option(True, "--venue/--no-venue", help=(
        "and end with a live session through ccxt against the Binance-protocol simulator")),
) -> None:
    """Backtest the shipped strategies and sweep sma_cross on real data; write an HTML report.

    Then (``--live``) a paper session on a live-looking feed: the last few hundred
    bars served by ``ReplayServer`` on loopback with injected drops, duplicates and
    malformed messages, received by ``WebsocketFeed`` (backfill from the cached data).
    """
    import pandas as pd

    from tradelab.research.backtest import backtest
    from tradelab.research.report import write_report
    from tradelab.research.sweep import sweep

    tl = build_app()
    settings = tl.settings
    source, symbol = settings.data.default_source, symbol or settings.data.default_symbol
    bars = tl.bars(symbol)
    ex = tl.execution
    typer.echo(f"data: {source}:{symbol}, {len(bars):,} daily bars "
               f"{bars.index[0]:%Y-%m-%d} .. {bars.index[-1]:%Y-%m-%d} (validated, cached)")
    typer.echo(f"execution: fill={ex.fill}, cash={ex.cash:,.0f}, fees={ex.fees:g}, "
               f"fixed_fees={ex.fixed_fees:g}, size={ex.size:g} {ex.size_type}, "
               f"{'fractional' if ex.fractional else 'whole'} units\n")

    results, rows = [], []
    for name in ("sma_cross", "rsi_reversion", "donchian_breakout"):
        if name not in tl.strategies:
            continue
        res = backtest(tl.strategy(name), bars, execution=ex, registry=tl.strategies)
        results.append(res)
        shown = {("round_trips" if k == "n_trades" else k): res.stats[k] for k in SHOWN}
        rows.append({"strategy": f"{name} {res.params}", **shown, "fills": len(res.orders)})
    table = pd.DataFrame(rows).set_index("strategy")
    with pd.option_context("display.width", 200, "display.max_columns", 20,
                           "display.float_format", "{:,.4f}".format):
        typer.echo("Backtests (default parameters)")
        typer.echo(table.to_string())

        grid = {"fast": list(range(5, 55, 5)), "slow": list(range(20, 220, 20))}
        swept = sweep("sma_cross", bars, grid, execution=ex, registry=tl.strategies,
                      progress=True)
        typer.echo(f"\nSweep sma_cross: {swept.n_valid} combinations "
                   f"({swept.n_invalid} invalid skipped) in {swept.elapsed:.2f} s; top 5 by sharpe")
        typer.echo(swept.top(5).rename(columns={"n_trades": "round_trips"}).to_string())

    path = report or settings.path(settings.research.reports_dir) / "demo.html"
    written = write_report([*results, swept], path, title=f"tradelab demo: {source}:{symbol}")
    typer.echo(f"\nReport with equity, drawdown, trades and the sweep heatmap: {written}")
    if live:
        live_session(tl, bars.iloc[-LIVE_BARS:], source, symbol)
    if venue:
        from tradelab.cli.demo_live import venue_session

        venue_session(tl, bars.iloc[-VENUE_BARS:], symbol)
    typer.echo("Explore interactively: make lab  (opens JupyterLab on notebooks/01_research.ipynb)")


def live_session(tl: Any, bars: Any, source: str, symbol: str, speed: float = LIVE_SPEED) -> Any:
    """Paper-trade sma_cross on ``bars`` streamed by a faulty loopback ``ReplayServer``.

    The store is ``var/demo/live.db`` (recreated each time); returns the run result.
    """
    from tradelab.app.feeds import describe
    from tradelab.feeds.replay_server import Faults, ReplayServer

    db = tl.settings.path("var/demo/live.db")
    db.parent.mkdir(parents=True, exist_ok=True)
    db.unlink(missing_ok=True)
    store = tl.open_store(f"sqlite:///{db}")
    n = len(bars)
    faults = Faults(seed=11, drop_after=(n // 3, n // 3), gap_on_drop=8, duplicate=0.02,
                    reorder=0.02, malformed=0.03)
    with ReplayServer({symbol: bars}, speed=speed, mode="live", faults=faults,
                      heartbeat=0.25) as server:
        typer.echo(f"\nLive paper session: {server.url} streams {n} real {symbol} bars "
                   f"({bars.index[0]:%Y-%m-%d} .. {bars.index[-1]:%Y-%m-%d}) at {speed:g} bars/s, "
                   "dropping the connection twice and sending duplicates, swaps and "
                   "malformed messages")
        feed = tl.feed(server.url, symbol, source=source, backoff_base=0.05, stale_after=2.0, seed=11)
        result = tl.engine("sma_cross", symbol, source=source, feed=feed, store=store,
                           account="demo-live", flush_seconds=0.5).run()
        injected = sum(v for k, v in server.injected.items() if k.startswith("malformed:"))
    stats = feed.stats()
    typer.echo(f"  {describe(stats)}; the server injected {injected} malformed messages")
    typer.echo(f"  run {result.run_id} ({result.stopped}) on account {result.account}: "
               f"{result.bars} bars, equity {float(result.equity):,.2f} "
               f"(return {result.total_return:+.2%}), fills {len(result.fills)}")
    typer.echo(f"  stored in {db}")
    store.close()
    return result
