"""``tradelab backtest`` and ``tradelab sweep``: the research loop from the shell.

Bars come from the configured market-data service (cached) or, with ``--csv``,
from one CSV file validated under the ``file`` source's policy. The execution
convention starts from ``[research]`` in the configuration; options override it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from tradelab.cli._app import app, build_app, emit_json, fail, parse_params
from tradelab.cli._gc import paused_gc
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
from tradelab.errors import TradelabError

if TYPE_CHECKING:
    from tradelab.research.conventions import TradeSpec
    from tradelab.strategy.base import Strategy

#: A field of Stops / TradeSpec as the option that sets it.
_FLAG = {"sl": "--sl", "tp": "--tp", "trail": "--trail", "time_bars": "--time-stop",
         "time_stop": "--time-stop", "direction": "--direction"}


def trade_spec(trade: TradeOptions, strategy: type[Strategy] | Strategy) -> TradeSpec:
    """The direction and stops of a research command; ValueError names the option."""
    from tradelab.research.conventions import TradeSpec

    try:
        direction, stops = trade.resolve(strategy)
        return TradeSpec(direction, stops)
    except ValueError as exc:
        # "sl = 1.5: ..." → "--sl 1.5: ...": the user typed options, not field names.
        message = re.sub(r"\b(sl|tp|trail|time_bars|time_stop|direction)( = |(?= '))",
                         lambda m: _FLAG[m.group(1)] + (" " if m.group(2) else ""), str(exc))
        raise ValueError(message) from None


def trade_keywords(spec: TradeSpec) -> dict[str, Any]:
    """``direction=, sl=, tp=, trail=, time_stop=`` of :func:`tradelab.backtest`/``sweep``."""
    stops = spec.stops
    return {"direction": spec.direction, "sl": stops.sl, "tp": stops.tp, "trail": stops.trail,
            "time_stop": stops.time_bars}


def describe_trade(spec: TradeSpec, per_bar: tuple[str, ...] = ()) -> str:
    """One line: the direction and the stops in use (``per_bar``: the strategy's per-bar
    stop fractions, which take precedence)."""
    stops = spec.stops
    parts = [f"{name} {value:g}" for name, value in
             (("sl", stops.sl), ("tp", stops.tp), ("trail", stops.trail))
             if value is not None and f"{name}_stop" not in per_bar]
    parts += [f"{name.partition('_')[0]} per bar (strategy)" for name in per_bar]
    return f"direction {spec.direction}, " + (", ".join(parts) if parts else "no stops")


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


def print_stats(stats: dict[str, Any]) -> None:
    """Aligned ``name  value`` lines (shared with ``paper``)."""
    width = max(len(k) for k in stats)
    for key, value in stats.items():
        shown = value.isoformat() if hasattr(value, "isoformat") else _fmt(key, value)
        typer.echo(f"  {key:<{width}}  {shown:>14}")


def named_counts(stats: dict[str, Any], fills: int | None = None) -> dict[str, Any]:
    """``n_trades`` shown as ``round_trips`` (and the fills next to it, when known):
    every command says "round trips" and "fills", never an ambiguous "trades" count."""
    out: dict[str, Any] = {}
    for key, value in stats.items():
        if key == "n_trades":
            out["round_trips"] = value
            if fills is not None:
                out["fills"] = fills
        else:
            out[key] = value
    return out


def json_safe(value: Any) -> Any:
    from tradelab.research.metrics import json_safe as safe

    return safe(value)


_PARAM = typer.Option(None, "--param", "-p", help="NAME=VALUE, repeatable")
_PPY = typer.Option(None, "--periods-per-year", help="bars per year (default inferred)")
_REPORT = typer.Option(None, "--report", help="also write a standalone HTML report here")
_UNIVERSE = typer.Option(None, "--universe", metavar="NAME",
                         help="a named universe (sp20, kopep) for a portfolio strategy")


@app.command("backtest")
@paused_gc  # one backtest, then exit: see tradelab.cli._gc
@with_options
def backtest_cmd(
    strategy: str = typer.Argument(..., help="strategy name (see `tradelab strategies`)"),
    data: DataOptions = DATA, param: list[str] = _PARAM, ex: ExecOptions = EXEC,
    periods_per_year: float = _PPY, as_json: bool = JSON, report: Path = _REPORT,
    trade: TradeOptions = TRADE, universe: str = _UNIVERSE,
    symbols: str = typer.Option(None, "--symbols", metavar="A,B,...",
                                help="the symbols of a portfolio strategy's universe"),
) -> None:
    """Backtest one parameter set on vectorbt and print stats (or JSON).

    A portfolio strategy trades its own universe, or ``--universe``/``--symbols``."""
    from tradelab.cli import portfolio_cmd
    from tradelab.research.backtest import backtest

    tl = build_app()
    kind = portfolio_cmd.find_portfolio(tl, strategy)
    if kind is not None:
        if report is not None:
            fail("--report: not available for a portfolio strategy yet (use --json)")
        return portfolio_cmd.backtest(tl, kind, parse_params(param), data, ex, trade, universe,
                                      symbols, periods_per_year, as_json)
    if universe is not None or symbols is not None:
        fail(f"--universe/--symbols: {strategy!r} is not a portfolio strategy (see `tradelab "
             "strategies`); `tradelab sweep --symbols` runs a one-symbol strategy on several")
    try:
        strat = tl.strategy(strategy, **parse_params(param))
        spec = trade_spec(trade, strat)
        execution = ex.apply(tl.execution)
        loaded = data.load(tl)
        result = backtest(strat, loaded.bars, execution=execution,
                          periods_per_year=periods_per_year
                          or tl.settings.research.periods_per_year, **trade_keywords(spec))
        written = _report(result, report)
    except (TradelabError, ValueError) as exc:
        fail(str(exc))
    stats = named_counts(result.stats, fills=len(result.orders))
    if as_json:
        out = result.to_dict()
        emit_json({"symbol": loaded.symbol, "source": loaded.source, "strategy": out["strategy"],
                   "params": out["params"], **json_safe(stats), "execution": out["execution"],
                   "direction": out["direction"], "stops": out["stops"],
                   "per_bar_stops": out["per_bar_stops"],
                   "periods_per_year": out["periods_per_year"], "trades": out["trades"],
                   "orders": out["orders"],
                   "data_quality": loaded.quality(),
                   **({"report": str(written)} if written else {})})
        return
    typer.echo(f"{result.title} on {loaded.symbol} ({loaded.source}), {len(loaded.bars)} bars")
    typer.echo(f"  {convention(execution)}")
    typer.echo(f"  {describe_trade(spec, result.per_bar_stops)}")
    print_stats(stats)
    if written:
        typer.echo(f"report: {written}")


@app.command("sweep")
@with_options
def sweep_cmd(
    strategy: str = typer.Argument(..., help="strategy name (see `tradelab strategies`)"),
    grid: list[str] = typer.Option(None, "--grid", "-g",
                                   help="NAME=START:STOP:STEP (inclusive) or NAME=V1,V2,...; "
                                        "NAME may also be sl, tp or trail (swept exits)"),
    param: list[str] = _PARAM, data: DataOptions = DATA, ex: ExecOptions = EXEC,
    periods_per_year: float = _PPY,
    metric: str = typer.Option("sharpe", help="rank by this metric (higher is better)"),
    top: int = typer.Option(10, help="rows to show"),
    chunk_size: int = typer.Option(None, "--chunk-size", help="combinations per vectorbt call"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bar on stderr"),
    cluster: str = typer.Option(None, "--cluster",
                                help="run chunks on Dask: 'local' or a scheduler tcp://host:8786"),
    symbols: str = typer.Option(None, "--symbols",
                                help="comma-separated symbols swept into one table (not with --csv)"),
    retries: int = typer.Option(2, "--retries", help="resubmissions of a failed chunk (--cluster)"),
    walk_forward: int = typer.Option(0, "--walk-forward", metavar="FOLDS",
                                     help="also pick in sample and test out of sample on FOLDS "
                                          "train/test windows (0: off)"),
    wf_mode: str = typer.Option("rolling", "--wf-mode",
                                help="rolling (fixed-length training window) or anchored "
                                     "(training from the first bar)"),
    wf_train: float = typer.Option(0.7, "--wf-train", metavar="FRACTION",
                                   help="in-sample fraction of each rolling train+test window"),
    min_trades: int = typer.Option(20, "--min-trades",
                                   help="flag rows with fewer round trips"),
    as_json: bool = JSON, report: Path = _REPORT, trade: TradeOptions = TRADE,
    universe: str = _UNIVERSE,
) -> None:
    """Backtest every combination of a parameter grid and rank them, with an
    overfitting estimate (deflated Sharpe ratio, PBO) and optionally walk-forward.

    ``--direction/--sl/--tp/--trail`` apply to every combination (fixed values);
    ``--grid sl=0.02,0.05`` (or ``tp``/``trail``) sweeps an exit like a parameter.
    A portfolio strategy is backtested once per combination on its universe (or
    ``--universe``/``--symbols``); a one-symbol strategy is swept over ``--universe``'s
    symbols like over ``--symbols``."""
    from tradelab.cli import portfolio_cmd
    from tradelab.research.distributed import BarsRef
    from tradelab.research.sweep import sweep
    from tradelab.research.walkforward import WalkForward

    values = parse_grid(grid)
    if metric == "round_trips":
        metric = "n_trades"
    tl = build_app()
    kind = portfolio_cmd.find_portfolio(tl, strategy)
    if kind is not None:
        if cluster is not None or walk_forward or report is not None:
            fail("--cluster, --walk-forward and --report do not apply to a portfolio "
                 "strategy yet")
        return portfolio_cmd.sweep(tl, kind, values, parse_params(param), data, ex, trade,
                                   universe, symbols, periods_per_year, metric, top, as_json)
    if universe is not None:
        if symbols is not None:
            fail("give --universe or --symbols, not both")
        symbols = ",".join(portfolio_cmd.named_universe(universe))
    names = [s.strip() for s in (symbols or "").split(",") if s.strip()]
    if names and (data.csv is not None or data.symbol is not None):
        fail("--symbols replaces --symbol and cannot be used with --csv")
    try:
        cls = tl.strategies.get(strategy)
        fixed = cls(**parse_params(param))  # validates the fixed parameters
        spec = trade_spec(trade, fixed)
        execution = ex.apply(tl.execution)
        wf = WalkForward(walk_forward, wf_mode, wf_train) if walk_forward else None
        if names:
            data.check()
            source = data.source or tl.settings.data.default_source
            bars: Any = BarsRef(source, names[0], start=data.start, end=data.end)
            symbol = ",".join(names)
        else:
            loaded = data.load(tl)
            bars, symbol, source = loaded.bars, loaded.symbol, loaded.source
            if cluster is not None and data.csv is None and (cluster == "local"
                                                             or tl.settings.cache.redis_url):
                # Workers share this machine's disk cache or the Redis tier: send a
                # reference and let each worker read the cache (the client just warmed it).
                bars = BarsRef(source, symbol, start=data.start, end=data.end)
        result = sweep(fixed, bars, values, execution=execution, metric=metric,
                       chunk_size=chunk_size or tl.settings.research.sweep_chunk_size,
                       progress=progress and not as_json, cluster=cluster,
                       symbols=names or None, retries=retries, settings=tl.settings,
                       walk_forward=wf, min_trades=min_trades,
                       periods_per_year=periods_per_year or tl.settings.research.periods_per_year,
                       **trade_keywords(spec))
        written = _report(result, report)
    except (TradelabError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        out = result.to_dict(top=top)
        out["rows"] = [named_counts(row) for row in out["rows"]]
        if out["walk_forward"] is not None:
            out["walk_forward"]["oos"] = named_counts(out["walk_forward"]["oos"])
        emit_json({"symbol": symbol, "source": source, **out,
                   **({"report": str(written)} if written else {})})
        return
    result_bars = result.bars
    n_bars = (sum(len(b) for b in result_bars.values()) if isinstance(result_bars, dict)
              else len(result_bars) if result_bars is not None else 0)
    typer.echo(f"{strategy} sweep on {symbol} ({source}), {n_bars} bars: "
               f"{result.n_valid} combinations, {result.n_invalid} invalid skipped, "
               f"{result.elapsed:.2f} s ({result.n_valid / max(result.elapsed, 1e-9):,.0f}/s)")
    typer.echo(f"  {convention(execution)}")
    typer.echo(f"  {describe_trade(spec)}")
    for r in result.retried:
        typer.echo(f"  retried chunk {r.chunk} (first {r.first}): {r.attempts} attempts; "
                   f"{'; '.join(r.errors)}")
    shown = result.top(top)
    table = shown.rename(columns={"n_trades": "round_trips"})
    formatters = {c: (lambda v, c=c: _fmt(c, v)) for c in table.columns
                  if c not in values and c != "symbol"}
    table["few_trades"] = result.few_trades(shown).map({True: "yes", False: ""})
    formatters["few_trades"] = str
    typer.echo(table.to_string(index=False, formatters=formatters, na_rep="n/a"))
    for line in result.summary():
        typer.echo(f"  {line}")
    if result.walk_forward is not None:
        folds = result.walk_forward.folds
        typer.echo(folds.to_string(index=False, formatters={  # is_cagr formatted as cagr, ...
            c: (lambda v, c=c: _fmt(c.partition("_")[2] if c[:3] in ("is_", "oos") else c, v))
            for c in folds.columns if c not in values and c != "fold"}, na_rep="n/a"))
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
