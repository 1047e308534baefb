"""``tradelab backtest`` and ``tradelab sweep``: the research loop from the shell.

Bars come from the configured market-data service (cached) or, with ``--csv``,
from one CSV file validated under the ``file`` source's policy. The execution
convention starts from ``[research]`` in the configuration; options override it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from tradelab.cli._app import app, build_app, emit_json, fail, parse_params
from tradelab.errors import TradelabError


def _exec_options(cash: float | None, fees: float | None, fixed_fees: float | None,
                  slippage: float | None, size: float | None, size_type: str | None,
                  fill: str | None, fractional: bool | None) -> dict[str, Any]:
    return dict(cash=cash, fees=fees, fixed_fees=fixed_fees, slippage=slippage, size=size,
                size_type=size_type, fill=fill, fractional=fractional)


def load_bars(tl: Any, symbol: str | None, source: str | None, start: str | None,
              end: str | None, csv: Path | None) -> tuple[Any, str, str]:
    """Bars plus the symbol and source names shown in the output."""
    if csv is not None:
        from tradelab.data.files import FileSource
        from tradelab.data.validate import validate_bars

        raw = FileSource(Path.cwd(), adjust="raw").load(str(csv), start=start, end=end)
        policy = tl.settings.data.policy_for("file")
        bars, _report = validate_bars(raw, policy, source="file", symbol=str(csv),
                                      gap_factor=tl.settings.data.gap_factor)
        return bars, str(csv), "file"
    symbol = symbol or tl.settings.data.default_symbol
    source = source or tl.settings.data.default_source
    return tl.bars(symbol, source=source, start=start, end=end), symbol, source


def parse_grid(items: list[str] | None) -> dict[str, list[Any]]:
    """``["fast=5:50:5", "slow=20,30,50"]`` → value lists.

    ``A:B:S`` is an inclusive range from A to B in steps of S (ints if all three
    are ints); ``a,b,c`` a list; a single value a one-element grid. Values are
    typed later by each :class:`~tradelab.strategy.base.Param`.
    """
    grid: dict[str, list[Any]] = {}
    for item in items or []:
        key, sep, spec = item.partition("=")
        key, spec = key.strip(), spec.strip()
        if not sep or not key or not spec:
            fail(f"--grid {item!r}: expected NAME=START:STOP:STEP or NAME=V1,V2,...")
        if ":" in spec:
            parts = spec.split(":")
            if len(parts) != 3:
                fail(f"--grid {item!r}: a range is START:STOP:STEP")
            try:
                nums = [float(p) for p in parts]
            except ValueError:
                fail(f"--grid {item!r}: START, STOP and STEP must be numbers")
            lo, hi, step = nums
            if not (step > 0 and hi >= lo and all(map(math.isfinite, nums))):
                fail(f"--grid {item!r}: need STEP > 0 and STOP >= START")
            count = math.floor((hi - lo) / step + 1e-9) + 1
            if all(p.strip().lstrip("-").isdigit() for p in parts):
                values: list[Any] = [int(lo) + i * int(step) for i in range(count)]
            else:
                values = [round(lo + i * step, 12) for i in range(count)]
        else:
            values = [v.strip() for v in spec.split(",") if v.strip()]
        if key in grid:
            fail(f"--grid {key}: given twice")
        grid[key] = values
    if not grid:
        fail("give at least one --grid NAME=VALUES")
    return grid


def _fmt(name: str, value: Any) -> str:
    # Called only once results exist, so research (numpy/pandas) is loaded already.
    from tradelab.research.result import format_stat

    return format_stat(name, value)


def _print_stats(stats: dict[str, Any]) -> None:
    width = max(len(k) for k in stats)
    for key, value in stats.items():
        shown = value.isoformat() if hasattr(value, "isoformat") else _fmt(key, value)
        typer.echo(f"  {key:<{width}}  {shown:>14}")


def _convention(ex: Any) -> str:
    return (f"cash {ex.cash:,.2f}, fees {ex.fees:g} + {ex.fixed_fees:g}/order, "
            f"slippage {ex.slippage:g}, size {ex.size:g} {ex.size_type}, fill {ex.fill}, "
            f"{'fractional' if ex.fractional else 'whole'} units")


_SYMBOL = typer.Option(None, help="symbol (default from config)")
_SOURCE = typer.Option(None, help="data source: sample, file, yfinance, ccxt (default from config)")
_START = typer.Option(None, help="first bar (date/time, inclusive)")
_END = typer.Option(None, help="last bar (date/time, inclusive)")
_CSV = typer.Option(None, "--csv", help="read bars from this CSV file instead of a source")
_PARAM = typer.Option(None, "--param", "-p", help="NAME=VALUE, repeatable")
_CASH = typer.Option(None, help="initial cash")
_FEES = typer.Option(None, help="fees as a fraction of notional per order")
_FIXED = typer.Option(None, "--fixed-fees", help="fixed fee per order, in cash")
_SLIP = typer.Option(None, help="slippage as a fraction of price, against the trader")
_SIZE = typer.Option(None, help="entry size (meaning depends on --size-type)")
_SIZE_TYPE = typer.Option(None, "--size-type", help="amount | value | percent")
_FILL = typer.Option(None, help="next_open | close")
_FRACTIONAL = typer.Option(None, "--fractional/--whole", help="fractional or whole units")
_PPY = typer.Option(None, "--periods-per-year", help="bars per year (default inferred)")
_JSON = typer.Option(False, "--json", help="print one JSON object")
_REPORT = typer.Option(None, "--report", help="also write a standalone HTML report here")


@app.command("backtest")
def backtest_cmd(
    strategy: str = typer.Argument(..., help="strategy name (see `tradelab strategies`)"),
    source: str = _SOURCE, symbol: str = _SYMBOL, start: str = _START, end: str = _END,
    csv: Path = _CSV, param: list[str] = _PARAM,
    cash: float = _CASH, fees: float = _FEES, fixed_fees: float = _FIXED,
    slippage: float = _SLIP, size: float = _SIZE, size_type: str = _SIZE_TYPE,
    fill: str = _FILL, fractional: bool = _FRACTIONAL, periods_per_year: float = _PPY,
    as_json: bool = _JSON, report: Path = _REPORT,
) -> None:
    """Backtest one parameter set on vectorbt and print stats (or JSON)."""
    from tradelab.research.backtest import backtest, resolve_execution

    tl = build_app()
    try:
        strat = tl.strategy(strategy, **parse_params(param))
        ex = resolve_execution(tl.execution, **_exec_options(
            cash, fees, fixed_fees, slippage, size, size_type, fill, fractional))
        bars, symbol, source = load_bars(tl, symbol, source, start, end, csv)
        result = backtest(strat, bars, execution=ex,
                          periods_per_year=periods_per_year
                          or tl.settings.research.periods_per_year)
        written = _report(result, report)
    except (TradelabError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        out = result.to_dict()
        emit_json({"symbol": symbol, "source": source, "strategy": out["strategy"],
                   "params": out["params"], **out["stats"], "execution": out["execution"],
                   "periods_per_year": out["periods_per_year"], "trades": out["trades"],
                   **({"report": str(written)} if written else {})})
        return
    typer.echo(f"{result.title} on {symbol} ({source}), {len(bars)} bars")
    typer.echo(f"  {_convention(ex)}")
    _print_stats(result.stats)
    if written:
        typer.echo(f"report: {written}")


@app.command("sweep")
def sweep_cmd(
    strategy: str = typer.Argument(..., help="strategy name (see `tradelab strategies`)"),
    grid: list[str] = typer.Option(None, "--grid", "-g",
                                   help="NAME=START:STOP:STEP (inclusive) or NAME=V1,V2,..."),
    param: list[str] = _PARAM,
    source: str = _SOURCE, symbol: str = _SYMBOL, start: str = _START, end: str = _END,
    csv: Path = _CSV,
    cash: float = _CASH, fees: float = _FEES, fixed_fees: float = _FIXED,
    slippage: float = _SLIP, size: float = _SIZE, size_type: str = _SIZE_TYPE,
    fill: str = _FILL, fractional: bool = _FRACTIONAL, periods_per_year: float = _PPY,
    metric: str = typer.Option("sharpe", help="rank by this metric (higher is better)"),
    top: int = typer.Option(10, help="rows to show"),
    chunk_size: int = typer.Option(None, "--chunk-size", help="combinations per vectorbt call"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bar on stderr"),
    cluster: str = typer.Option(None, "--cluster",
                                help="run chunks on Dask: 'local' or a scheduler tcp://host:8786"),
    symbols: str = typer.Option(None, "--symbols",
                                help="comma-separated symbols swept into one table (not with --csv)"),
    retries: int = typer.Option(2, "--retries", help="resubmissions of a failed chunk (--cluster)"),
    as_json: bool = _JSON, report: Path = _REPORT,
) -> None:
    """Backtest every combination of a parameter grid and rank them."""
    from tradelab.research.backtest import resolve_execution
    from tradelab.research.distributed import BarsRef
    from tradelab.research.sweep import sweep

    values = parse_grid(grid)
    names = [s.strip() for s in (symbols or "").split(",") if s.strip()]
    if names and (csv is not None or symbol is not None):
        fail("--symbols replaces --symbol and cannot be used with --csv")
    tl = build_app()
    try:
        cls = tl.strategies.get(strategy)
        fixed = cls(**parse_params(param))  # validates the fixed parameters
        ex = resolve_execution(tl.execution, **_exec_options(
            cash, fees, fixed_fees, slippage, size, size_type, fill, fractional))
        if names:
            source = source or tl.settings.data.default_source
            bars: Any = BarsRef(source, names[0], start=start, end=end)
            symbol = ",".join(names)
        else:
            bars, symbol, source = load_bars(tl, symbol, source, start, end, csv)
            if cluster is not None and csv is None and (cluster == "local"
                                                        or tl.settings.cache.redis_url):
                # Workers share this machine's disk cache or the Redis tier: send a
                # reference and let each worker read the cache (the client just warmed it).
                bars = BarsRef(source, symbol, start=start, end=end)
        result = sweep(fixed, bars, values, execution=ex, metric=metric,
                       chunk_size=chunk_size or tl.settings.research.sweep_chunk_size,
                       progress=progress and not as_json, cluster=cluster,
                       symbols=names or None, retries=retries, settings=tl.settings,
                       periods_per_year=periods_per_year or tl.settings.research.periods_per_year)
        written = _report(result, report)
    except (TradelabError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        emit_json({"symbol": symbol, "source": source, **result.to_dict(top=top),
                   **({"report": str(written)} if written else {})})
        return
    bars = result.bars
    n_bars = (sum(len(b) for b in bars.values()) if isinstance(bars, dict)
              else len(bars) if bars is not None else 0)
    typer.echo(f"{strategy} sweep on {symbol} ({source}), {n_bars} bars: "
               f"{result.n_valid} combinations, {result.n_invalid} invalid skipped, "
               f"{result.elapsed:.2f} s ({result.n_valid / max(result.elapsed, 1e-9):,.0f}/s)")
    typer.echo(f"  {_convention(ex)}")
    for r in result.retried:
        typer.echo(f"  retried chunk {r.chunk} (first {r.first}): {r.attempts} attempts; "
                   f"{'; '.join(r.errors)}")
    table = result.top(top)
    formatters = {c: (lambda v, c=c: _fmt(c, v)) for c in table.columns
                  if c not in values and c != "symbol"}
    typer.echo(table.to_string(index=False, formatters=formatters))
    if written:
        typer.echo(f"report: {written}")


def _report(result: Any, path: Path | None) -> Path | None:
    if path is None:
        return None
    from tradelab.research.report import write_report

    try:
        return write_report(result, path)
    except OSError as exc:
        raise TradelabError(f"--report {path}: {exc}") from exc
