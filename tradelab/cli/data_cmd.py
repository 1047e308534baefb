"""``tradelab cache stats|clear`` and ``tradelab data sources|show|quality``."""

from __future__ import annotations

from typing import Any

import typer

from tradelab.cli._app import app, build_app, emit_json, fail, settings
from tradelab.errors import DataValidationError, TradelabError

cache_app = typer.Typer(help="Inspect and clear the bar cache.", no_args_is_help=True)
data_app = typer.Typer(help="Data sources and validated bars.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
app.add_typer(data_app, name="data")


def _cache() -> Any:
    # Only the cache: no sources or strategy discovery for a housekeeping command.
    from tradelab.app import build_cache

    try:
        return build_cache(settings())
    except (TradelabError, OSError) as exc:
        fail(f"cannot open the cache: {exc}")


@cache_app.command("stats")
def cache_stats(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Entries, size and hit/miss counts per cache level (disk counts persist)."""
    stats = _cache().stats()
    if as_json:
        emit_json(stats)
        return
    if not stats["levels"]:
        typer.echo("cache disabled ([cache] enabled = false)")
        return
    for level in stats["levels"]:
        extra = f", {level['bytes']:,} bytes in {level['directory']}" if "bytes" in level else ""
        if "errors" in level:
            extra += f", {level['errors']} errors ({'up' if level['available'] else 'DOWN'})"
        typer.echo(f"{level['name']:>6}: {level.get('size', '?')} entries{extra}; "
                   f"{level['hits']} hits, {level['misses']} misses "
                   f"(hit ratio {level['hit_ratio']:.1%})")


@cache_app.command("clear")
def cache_clear(tag: str = typer.Option(
        None, "--tag", help="only entries with this tag, e.g. source=sample or symbol=SPX")) -> None:
    """Remove cached bars: everything, or the entries carrying one tag."""
    from tradelab.data.service import normalize_tag

    cache = _cache()
    if tag is not None:
        if "=" not in tag:
            fail(f"--tag {tag!r}: expected source=NAME or symbol=SYMBOL")
        tag = normalize_tag(tag)
        per_level = cache.invalidate_levels(tag)
        what = f"with tag {tag}"
    else:
        per_level = cache.clear_levels()
        what = "in total"
    removed = max(per_level.values(), default=0)
    detail = ", ".join(f"{name}: {n}" for name, n in per_level.items())
    typer.echo(f"removed {removed} entries {what}" + (f" ({detail})" if detail else ""))


@data_app.command("sources")
def data_sources(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """The configured data sources, their default adjustment and known symbols."""
    tl = build_app()
    default = tl.settings.data.default_source
    rows = []
    for name, src in sorted(tl.data.sources.items()):
        symbols = src.symbols() if hasattr(src, "symbols") else None
        rows.append({"name": name, "default": name == default, "source": repr(src),
                     "adjust": getattr(src, "adjust", "raw"),
                     "policy": tl.settings.data.policy_for(name),
                     "symbols": list(symbols) if symbols is not None else None})
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        mark = "*" if row["default"] else " "
        syms = "" if row["symbols"] is None else f"; symbols: {', '.join(row['symbols']) or '-'}"
        typer.echo(f"{mark} {row['name']:<9} {row['source']} (adjust {row['adjust']}, "
                   f"policy {row['policy']}){syms}")


@data_app.command("show")
def data_show(
    symbol: str = typer.Argument(..., help="symbol, e.g. SPX, a file name or BTC/USDT"),
    source: str = typer.Option(None, help="data source (default from config)"),
    start: str = typer.Option(None, help="first bar, e.g. 2010-01-01"),
    end: str = typer.Option(None, help="last bar (inclusive)"),
    interval: str = typer.Option("1d", help="bar size: 1m, 1h, 1d, ..."),
    adjust: str = typer.Option(None, help="raw or adjusted (default: the source's)"),
    policy: str = typer.Option(None, help="raise, drop or fill (default from config)"),
    rows: int = typer.Option(5, help="rows to print from each end"),
) -> None:
    """Load bars (through the cache) and print both ends, the count and the validation report."""
    import pandas as pd

    if adjust not in (None, "raw", "adjusted"):
        fail(f"--adjust {adjust!r}: expected raw or adjusted")
    if policy not in (None, "raise", "drop", "fill"):
        fail(f"--policy {policy!r}: expected raise, drop or fill")
    tl = build_app()
    try:
        bars = tl.data.load(symbol, source=source, start=start, end=end, interval=interval,
                            adjust=adjust, policy=policy)
    except DataValidationError as exc:
        typer.echo(f"error: {str(exc).splitlines()[0]}", err=True)
        if exc.report is not None:
            typer.echo(str(exc.report), err=True)
        raise typer.Exit(1) from None
    except (TradelabError, ValueError) as exc:
        fail(str(exc).splitlines()[0])
    with pd.option_context("display.width", 120, "display.max_columns", 10):
        if len(bars) > 2 * rows:
            typer.echo(bars.head(rows).to_string())
            typer.echo("...")
            typer.echo(bars.tail(rows).to_string(header=False, index_names=False))
        else:
            typer.echo(bars.to_string())
    span = f"{bars.index[0]} .. {bars.index[-1]}" if len(bars) else "no bars"
    typer.echo(f"{len(bars)} bars ({span})")
    if tl.data.last_report is not None:
        typer.echo(str(tl.data.last_report))


@data_app.command("quality")
def data_quality(
    run: int = typer.Option(None, "--run", help="only this run's outcomes"),
    limit: int = typer.Option(50, help="newest rows to show when no --run is given"),
    db: str = typer.Option(None, help="store URL overriding [store] url"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Recorded data-quality outcomes (rejected by reason, gaps, staleness, breaches)."""
    from tradelab.store import open_store

    tl = build_app()
    try:
        store = open_store(tl.settings, db)
        rows = store.quality.events(run, limit=None if run is not None else limit)
    except Exception as exc:  # a bad URL or an unreachable server: one line, exit 2
        fail(f"store: {type(exc).__name__}: {exc}")
    if as_json:
        emit_json([{"id": r.id, "run_id": r.run_id, "account_id": r.account_id, "source": r.source,
                    "symbol": r.symbol, "kind": r.kind, "reason": r.reason, "count": r.count,
                    "detail": r.detail, "at": r.at} for r in rows])
        return
    if not rows:
        typer.echo("no data-quality outcomes recorded" + (f" for run {run}" if run is not None else ""))
        return
    for r in rows:
        detail = f"  {r.detail}" if r.detail else ""
        typer.echo(f"{r.at:%Y-%m-%d %H:%M:%S} run {r.run_id if r.run_id is not None else '-':>4} "
                   f"{r.kind:8} {r.source}:{r.symbol} {r.reason} {r.count}{detail}")
    totals: dict[tuple[str, str], int] = {}
    for r in rows:
        if r.kind != "breach":
            totals[(r.kind, r.reason)] = totals.get((r.kind, r.reason), 0) + r.count
    if totals:
        typer.echo("totals: " + ", ".join(f"{k} {reason} {n}"
                                          for (k, reason), n in sorted(totals.items())))
