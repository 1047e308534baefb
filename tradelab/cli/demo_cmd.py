"""``tradelab demo``: the research loop end to end on the embedded real data."""

from __future__ import annotations

from pathlib import Path

import typer

from tradelab.cli._app import app, build_app

SHOWN = ["total_return", "cagr", "sharpe", "sortino", "max_drawdown", "win_rate", "n_trades",
         "exposure", "final_equity"]


@app.command("demo")
def demo(
    symbol: str = typer.Option(None, help="symbol of the default source (default from config)"),
    report: Path = typer.Option(None, help="HTML report path (default <reports_dir>/demo.html)"),
) -> None:
    """Backtest the shipped strategies and sweep sma_cross on real data; write an HTML report."""
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
        rows.append({"strategy": f"{name} {res.params}", **{k: res.stats[k] for k in SHOWN}})
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
        typer.echo(swept.top(5).to_string())

    path = report or settings.path(settings.research.reports_dir) / "demo.html"
    written = write_report([*results, swept], path, title=f"tradelab demo: {source}:{symbol}")
    typer.echo(f"\nReport with equity, drawdown, trades and the sweep heatmap: {written}")
    typer.echo("Explore interactively: make lab  (opens JupyterLab on notebooks/01_research.ipynb)")
