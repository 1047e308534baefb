"""``tradelab strategies`` and ``tradelab check``."""

from __future__ import annotations

import inspect

import typer

from tradelab.cli._app import app, build_app, emit_json, fail, parse_params
from tradelab.cli._options import DATA, DataOptions, with_options
from tradelab.errors import TradelabError


@app.command("strategies")
def strategies(as_json: bool = typer.Option(False, "--json")) -> None:
    """List the strategies found in strategies/ and installed plug-ins, with parameters.

    ``kind`` is ``signal`` (one symbol's entries and exits) or ``portfolio`` (target
    weights over a universe, shown after the kind)."""
    from tradelab.cli.portfolio_cmd import portfolio_classes
    from tradelab.data.universe import universe_symbols

    tl = build_app()
    rows = []
    for name in tl.strategies.names():
        cls = tl.strategies.get(name)
        rows.append({"name": name, "kind": "signal", "description": cls.description,
                     "origin": tl.strategies.origin(name),
                     "params": [vars(p) for p in cls.param_specs()]})
    try:
        portfolios = portfolio_classes(tl)
    except TradelabError as exc:
        fail(str(exc))
    for name, pcls in sorted(portfolios.items()):
        rows.append({"name": name, "kind": "portfolio", "description": pcls.description,
                     "origin": inspect.getfile(pcls),
                     "universe": list(universe_symbols(pcls.universe)),
                     "rebalance": str(pcls.rebalance),
                     "params": [vars(p) for p in pcls.param_specs()]})
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        where = f" on {','.join(row['universe'])}" if row["kind"] == "portfolio" else ""
        typer.echo(f"{row['name']} ({row['kind']}{where}): {row['description']}")
        for p in row["params"]:
            bounds = "" if p["kind"] == "bool" else f" [{p['low']}, {p['high']}]"
            typer.echo(f"    {p['name']} ({p['kind']}, default {p['default']}{bounds}) {p['doc']}")


@app.command("check")
@with_options
def check(
    strategy: str = typer.Argument(..., help="strategy name"),
    data: DataOptions = DATA,
    param: list[str] = typer.Option(None, "--param", "-p", help="NAME=VALUE, repeatable"),
    samples: int = typer.Option(40, help="prefixes and windows to compare"),
    universe: str = typer.Option(None, "--universe", metavar="NAME",
                                 help="a portfolio strategy's universe (default its own)"),
    symbols: str = typer.Option(None, "--symbols", metavar="A,B,...",
                                help="a portfolio strategy's symbols"),
) -> None:
    """Look-ahead check: full-history signals must equal signals on prefixes and windows
    (a portfolio strategy: its target weights on prefixes of the history)."""
    from tradelab.cli import portfolio_cmd
    from tradelab.strategy.lookahead import check_lookahead

    tl = build_app()
    kind = portfolio_cmd.find_portfolio(tl, strategy)
    if kind is not None:
        return portfolio_cmd.check(tl, kind, parse_params(param), data, universe, symbols,
                                   samples)
    if universe is not None or symbols is not None:
        fail(f"--universe/--symbols: {strategy!r} is not a portfolio strategy")
    try:
        strat = tl.strategy(strategy, **parse_params(param))
        bars = data.load(tl).bars
    except (TradelabError, ValueError) as exc:
        fail(str(exc))
    try:
        report = check_lookahead(strat, bars, samples=samples)
    except ValueError as exc:  # too few bars, or signals that change shape
        fail(str(exc))
    typer.echo(str(report))
    if not report.ok:
        raise typer.Exit(1)
