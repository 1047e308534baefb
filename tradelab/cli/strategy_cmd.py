"""``tradelab strategies`` and ``tradelab check``."""

from __future__ import annotations

import typer

from tradelab.cli._app import app, build_app, emit_json, fail, parse_params
from tradelab.cli._options import DATA, DataOptions, with_options
from tradelab.errors import TradelabError


@app.command("strategies")
def strategies(as_json: bool = typer.Option(False, "--json")) -> None:
    """List the strategies found in strategies/ and installed plug-ins, with parameters."""
    tl = build_app()
    rows = []
    for name in tl.strategies.names():
        cls = tl.strategies.get(name)
        rows.append({"name": name, "description": cls.description,
                     "origin": tl.strategies.origin(name),
                     "params": [vars(p) for p in cls.param_specs()]})
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        typer.echo(f"{row['name']}: {row['description']}")
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
) -> None:
    """Look-ahead check: full-history signals must equal signals on prefixes and windows."""
    from tradelab.strategy.lookahead import check_lookahead

    tl = build_app()
    try:
        strat = tl.strategy(strategy, **parse_params(param))
        bars = data.load(tl).bars
    except (TradelabError, ValueError) as exc:
        fail(str(exc))
    report = check_lookahead(strat, bars, samples=samples)
    typer.echo(str(report))
    if not report.ok:
        raise typer.Exit(1)
