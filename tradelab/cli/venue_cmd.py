"""``tradelab venue-sim binance|alpaca``: a venue simulator speaking the venue's wire protocol.

Bars come from ``--source/--symbol`` through the data service (``--symbol
DATA=VENUE`` names the venue's market, e.g. ``--symbol BTC/USDT`` or ``--symbol
SPX=SPX/USDT``); with no symbol, the shipped sample S&P 500 daily bars are replayed
as ``SPX/USDT`` (Binance) or ``SPX`` (Alpaca). The first ``READY <url>`` line on
stdout says it is listening. See :mod:`tradelab.brokers.sim.binance` for the
endpoints (including the ``/_sim/*`` control endpoints) and
:mod:`tradelab.brokers.sim.faults` for ``--faults``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from tradelab.cli._app import app, build_app, fail
from tradelab.errors import TradelabError

VENUES = ("binance", "alpaca")


def _load(venue: str, symbols: list[str], source: str | None, start: str | None,
          end: str | None) -> dict[str, Any]:
    tl = build_app()
    wanted = symbols or ["SPX=SPX/USDT" if venue == "binance" else "SPX=SPX"]
    out = {}
    for item in wanted:
        data_symbol, _, venue_symbol = item.partition("=")
        src = source or ("sample" if not symbols else None)
        out[venue_symbol or data_symbol] = tl.data.load(data_symbol, source=src, start=start, end=end)
    return out


@app.command("venue-sim")
def venue_sim(
    venue: str = typer.Argument(..., help="binance | alpaca"),
    port: int = typer.Option(0, help="listen port (0: any free port, printed on the READY line)"),
    host: str = typer.Option("127.0.0.1", help="listen address (loopback by default)"),
    key: str = typer.Option(..., help="the API key the simulator accepts"),
    secret: str = typer.Option(..., help="the API secret it checks signatures with"),
    source: str = typer.Option(None, help="data source (default [data]; sample without --symbol)"),
    symbol: list[str] = typer.Option(None, "--symbol", "-s",
                                     help="SYMBOL or DATA_SYMBOL=VENUE_SYMBOL, repeatable"),
    start: str = typer.Option(None, help="first bar date"),
    end: str = typer.Option(None, help="last bar date"),
    faults: str = typer.Option(None, help="fault SPEC (see tradelab.brokers.sim.faults)"),
    seed: int = typer.Option(0, help="seed of probabilistic faults"),
    bar_seconds: float = typer.Option(0.0, help="close a bar every F seconds (0: POST /_sim/advance)"),
    state: Path = typer.Option(None, help="state file: a restarted simulator keeps its account"),
    balance: list[str] = typer.Option(None, "--balance", help="ASSET=AMOUNT starting balance, repeatable"),
    fee_rate: str = typer.Option("0.001", help="fee as a fraction of notional (quote asset)"),
    volume_fraction: float = typer.Option(None, help="share of a bar's volume that can fill"),
    start_bar: int = typer.Option(0, help="bars already closed at start (history for warmup)"),
    order_limit: int = typer.Option(100, help="binance: new orders per 10 s before 429 -1015"),
    bars_file: Path = typer.Option(None, hidden=True, help="bars as JSON (the test harness)"),
) -> None:
    """Serve a venue's real wire protocol on loopback, replaying bars, until interrupted."""
    if venue not in VENUES:
        fail(f"unknown venue {venue!r}; expected one of {', '.join(VENUES)}")
    try:
        if bars_file is not None:
            from tradelab.brokers.sim.harness import read_bars

            bars = read_bars(bars_file)
        else:
            bars = _load(venue, symbol or [], source, start, end)
        balances = dict(item.split("=", 1) for item in balance) if balance else None
    except (TradelabError, ValueError) as exc:
        fail(str(exc))
    if venue == "binance":
        from tradelab.brokers.sim.harness import serve_binance

        code = serve_binance(bars, key=key, secret=secret, host=host, port=port, faults=faults, seed=seed,
                     bar_seconds=bar_seconds, state_path=state, balances=balances,
                     fee_rate=fee_rate, volume_fraction=volume_fraction, start=start_bar,
                     order_limit=order_limit,
                     ready=lambda url: typer.echo(f"READY {url}"))
    else:
        from decimal import Decimal

        from tradelab.brokers.sim import alpaca

        cash = Decimal((balances or {}).get("USD", 100_000))
        code = alpaca.serve(bars, key=key, secret=secret, host=host, port=port, faults=faults,
                            seed=seed, bar_seconds=bar_seconds, state_path=state, cash=cash,
                            volume_fraction=volume_fraction,
                            ready=lambda p: typer.echo(f"READY http://{host}:{p}"))
    raise typer.Exit(code)
