"""Portfolio strategies from the shell: what ``backtest``, ``sweep`` and ``check`` do
when the strategy is a :class:`~tradelab.strategy.portfolio.PortfolioStrategy`.

The commands themselves live in :mod:`tradelab.cli.research_cmd` and
:mod:`tradelab.cli.strategy_cmd`; they hand over here when the name is a portfolio
strategy (or, for ``backtest``, when ``--universe``/``--symbols`` is given). The
universe is ``--universe NAME`` (see :data:`tradelab.data.universe.UNIVERSES`) or
``--symbols A,B,...``; without either, the strategy's own. Bars come from the
configured market-data service (cached and validated per symbol) and are aligned
under :func:`tradelab.data.universe.align`'s rule.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import typer

from tradelab.cli._app import emit_json, fail
from tradelab.cli._options import DataOptions, ExecOptions, TradeOptions, convention
from tradelab.errors import TradelabError, UnknownStrategyError

if TYPE_CHECKING:
    import pandas as pd

    from tradelab.data.universe import Panel
    from tradelab.execution import Execution
    from tradelab.strategy.portfolio import PortfolioStrategy

#: Figures of a portfolio sweep row (``PortfolioResult.stats`` keys), in column order.
SWEEP_FIGURES = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "final_equity",
                 "exposure_gross", "exposure_net", "turnover_per_year", "n_orders")


def portfolio_classes(tl: Any) -> dict[str, type[PortfolioStrategy]]:
    """Name → class of the portfolio strategies under the configured ``[strategies] paths``."""
    from tradelab.strategy.portfolio import discover_portfolio_strategies

    settings = tl.settings
    paths = [p for p in (settings.path(q) for q in settings.strategies.paths) if p.exists()]
    return discover_portfolio_strategies(paths)


def find_portfolio(tl: Any, name: str) -> type[PortfolioStrategy] | None:
    """The portfolio strategy class called ``name``, or None when ``name`` is a
    single-symbol strategy; exit 2 naming both kinds' strategies when it is neither."""
    if name in tl.strategies:
        return None  # files are loaded again only for names the registry does not hold
    try:
        found = portfolio_classes(tl)
    except TradelabError as exc:
        fail(str(exc))
    if name not in found:
        fail(str(UnknownStrategyError(name, [*tl.strategies.names(), *sorted(found)])))
    return found[name]


def named_universe(universe: str) -> tuple[str, ...]:
    """The symbols of ``--universe NAME`` (exit 2 naming an unknown one)."""
    from tradelab.data.universe import UNIVERSES

    if universe not in UNIVERSES:
        fail(f"--universe {universe!r}: unknown; known universes: {', '.join(UNIVERSES)} "
             "(or give --symbols A,B,...)")
    return UNIVERSES[universe]


def universe_of(cls: type[PortfolioStrategy], universe: str | None,
                symbols: str | None) -> tuple[str, ...]:
    """The symbols to trade: ``--universe``, ``--symbols`` or the strategy's own."""
    from tradelab.data.universe import universe_symbols

    if universe is not None and symbols is not None:
        fail("give --universe or --symbols, not both")
    if universe is not None:
        return named_universe(universe)
    if symbols is not None:
        names = tuple(s.strip().upper() for s in symbols.split(",") if s.strip())
        if not names:
            fail(f"--symbols {symbols!r}: no symbols")
        twice = sorted({s for s in names if names.count(s) > 1})
        if twice:
            fail(f"--symbols {symbols!r}: {', '.join(twice)} given twice; give each symbol once")
        return names
    return universe_symbols(cls.universe)


def strategy_on(cls: type[PortfolioStrategy], params: dict[str, str],
                names: tuple[str, ...]) -> PortfolioStrategy:
    """``cls(**params)``, refused (exit 2) when ``names`` lack a symbol it requires
    (:func:`~tradelab.strategy.portfolio.require_symbols`), before any bar is loaded."""
    from tradelab.strategy.portfolio import require_symbols

    try:
        strat = cls(**params)
        require_symbols(strat, names)
    except (TradelabError, ValueError) as exc:
        fail(str(exc))
    return strat


def load_bars(tl: Any, data: DataOptions, symbols: tuple[str, ...]
              ) -> tuple[dict[str, pd.DataFrame], str]:
    """Each symbol's bars through the market-data service (exit 2 on bad options or a
    symbol without bars), and the source they came from."""
    if data.csv is not None or data.symbol is not None:
        fail("a portfolio strategy reads a universe: use --universe or --symbols, "
             "not --symbol/--csv")
    try:
        data.check()
    except ValueError as exc:
        fail(str(exc))
    source = data.source or tl.settings.data.default_source
    bars = {}
    for s in symbols:
        frame = tl.data.load(s, source=source, start=data.start, end=data.end,
                             policy=data.policy)
        if len(frame) == 0:
            fail(f"--symbols: no bars for {s} from {source} in the given range")
        bars[s] = frame
    return bars, source


def load_panel(tl: Any, data: DataOptions, symbols: tuple[str, ...]) -> tuple[Panel, str]:
    """The aligned panel of ``symbols`` (see :func:`load_bars`), and its source."""
    from tradelab.data.universe import align

    bars, source = load_bars(tl, data, symbols)
    panel = align(bars)
    if len(panel) < 2:
        fail(f"need at least 2 bars, got {len(panel)}")
    return panel, source


def _no_single_symbol_options(ex: ExecOptions, trade: TradeOptions) -> None:
    """Options of single-symbol trading refused for a portfolio, by name."""
    for flag, value in (("--size", ex.size), ("--size-type", ex.size_type),
                        ("--direction", trade.direction), ("--sl", trade.sl), ("--tp", trade.tp),
                        ("--trail", trade.trail), ("--time-stop", trade.time_stop)):
        if value is not None:
            fail(f"{flag} does not apply to a portfolio strategy: its target weights set the "
                 "sizes and sides")


def _execution(tl: Any, ex: ExecOptions) -> Execution:
    try:
        return ex.apply(tl.execution)
    except ValueError as exc:
        fail(str(exc))


def backtest(tl: Any, cls: type[PortfolioStrategy], params: dict[str, str], data: DataOptions,
             ex: ExecOptions, trade: TradeOptions, universe: str | None, symbols: str | None,
             periods_per_year: float | None, as_json: bool) -> None:
    """``tradelab backtest`` of a portfolio strategy: portfolio and per-symbol figures and
    (``--json``) every fill."""
    from tradelab.research.portfolio import backtest_portfolio
    from tradelab.research.result import format_stat

    _no_single_symbol_options(ex, trade)
    names = universe_of(cls, universe, symbols)
    execution = _execution(tl, ex)
    strat = strategy_on(cls, params, names)
    try:
        panel, source = load_panel(tl, data, names)
        result = backtest_portfolio(strat, panel=panel, execution=execution,
                                    periods_per_year=periods_per_year)
    except (TradelabError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        out = result.to_dict()
        emit_json({"kind": "portfolio", "source": source, "bars": len(panel),
                   "start": panel.index[0].isoformat(), "end": panel.index[-1].isoformat(),
                   "close_only": panel.close_only, "fills": len(result.orders), **out})
        return
    typer.echo(f"{result.title} on {len(names)} symbols ({source}), {len(panel)} bars "
               f"{panel.index[0]:%Y-%m-%d}..{panel.index[-1]:%Y-%m-%d}, "
               f"rebalance {result.schedule}")
    typer.echo(f"  {convention(execution, entry_size=False)}"
               + ("; close-only data: fills at closes" if panel.close_only else ""))
    width = max(len(k) for k in result.stats)
    for key, value in result.stats.items():
        typer.echo(f"  {key:<{width}}  {format_stat(key, value):>14}")
    table = result.per_symbol[["pnl", "contribution", "orders", "final_units", "final_weight"]]
    typer.echo(table.to_string(float_format=lambda v: f"{v:,.4f}"))


def sweep(tl: Any, cls: type[PortfolioStrategy], grid: dict[str, list[Any]],
          params: dict[str, str], data: DataOptions, ex: ExecOptions, trade: TradeOptions,
          universe: str | None, symbols: str | None, periods_per_year: float | None,
          metric: str, top: int, as_json: bool) -> None:
    """``tradelab sweep`` of a portfolio strategy: one backtest per combination of the grid
    (a loop: the rebalance path is sequential), ranked by ``metric``; each row is exactly
    its ``backtest`` (a ``--borrow-fee`` included)."""
    import pandas as pd

    from tradelab.research.portfolio import backtest_portfolio
    from tradelab.research.result import format_stat

    _no_single_symbol_options(ex, trade)
    known = cls.param_objects()
    for key in grid:
        if key not in known:
            fail(f"--grid {key}: not a parameter of {cls.name}; known: {', '.join(known)}")
    if metric not in SWEEP_FIGURES:
        fail(f"--metric {metric!r}: expected one of {', '.join(SWEEP_FIGURES)}")
    names = universe_of(cls, universe, symbols)
    execution = _execution(tl, ex)
    keys = list(grid)
    rows: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    started = time.perf_counter()
    strategy_on(cls, params, names)  # the fixed parameters alone must be valid
    try:
        panel, source = load_panel(tl, data, names)
        for combo in itertools.product(*(grid[k] for k in keys)):
            values = dict(zip(keys, combo, strict=True))
            try:
                strat = cls(**{**params, **values})
            except TradelabError as exc:
                invalid.append({**values, "reason": str(exc)})
                continue
            res = backtest_portfolio(strat, panel=panel, execution=execution,
                                     periods_per_year=periods_per_year)
            rows.append({**{k: strat.params[k] for k in keys},
                         **{f: res.stats[f] for f in SWEEP_FIGURES}})
    except (TradelabError, ValueError) as exc:
        fail(str(exc))
    elapsed = time.perf_counter() - started
    table = pd.DataFrame(rows, columns=[*keys, *SWEEP_FIGURES])
    # NaN figures (no trades) rank last, whatever the metric.
    table = table.sort_values(metric, ascending=False, na_position="last", kind="stable")
    shown = table.head(top)
    if as_json:
        from tradelab.research.metrics import json_safe

        emit_json(json_safe({
            "kind": "portfolio", "strategy": cls.name, "params": params,
            "symbols": list(names), "source": source, "bars": len(panel), "metric": metric,
            "execution": asdict(execution), "n_valid": len(rows), "n_invalid": len(invalid),
            "invalid": invalid, "elapsed": elapsed, "rows": shown.to_dict("records")}))
        return
    typer.echo(f"{cls.name} sweep on {len(names)} symbols ({source}), {len(panel)} bars: "
               f"{len(rows)} combinations, {len(invalid)} invalid skipped, {elapsed:.2f} s")
    typer.echo(f"  {convention(execution, entry_size=False)}")
    formatters = {c: (lambda v, c=c: format_stat(c, v)) for c in SWEEP_FIGURES}
    typer.echo(shown.to_string(index=False, formatters=formatters, na_rep="n/a"))
    for bad in invalid[:3]:
        typer.echo(f"  invalid: {bad['reason']}")


def check(tl: Any, cls: type[PortfolioStrategy], params: dict[str, str], data: DataOptions,
          universe: str | None, symbols: str | None, samples: int) -> None:
    """``tradelab check`` of a portfolio strategy: its weights on truncated histories must
    equal the full history's (exit 1 when one changed)."""
    from tradelab.strategy.portfolio import check_weights_lookahead

    names = universe_of(cls, universe, symbols)
    strat = strategy_on(cls, params, names)
    try:
        panel, _ = load_panel(tl, data, names)
        report = check_weights_lookahead(strat, panel, samples=samples)
    except (TradelabError, ValueError) as exc:
        fail(str(exc))
    typer.echo(str(report))
    if not report.ok:
        raise typer.Exit(1)
