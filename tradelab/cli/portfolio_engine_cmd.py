"""``tradelab paper`` and ``tradelab parity`` for a portfolio strategy.

:mod:`tradelab.cli.engine_cmd` hands over here when the strategy name is a
:class:`~tradelab.strategy.portfolio.PortfolioStrategy` (or ``--universe``/``--symbols``
is given). The universe is ``--universe NAME`` or ``--symbols A,B,...`` (default: the
strategy's own), its bars come from ``--source`` through the market-data service;
the engine is :meth:`tradelab.app.App.portfolio_engine` (a replay, or with ``--feed`` a
live feed of the universe batched per time stamp by :mod:`tradelab.feeds.stamps`; persisted), which
hands the strategy its declared ``decision_window`` of bars (every bar when it
declares none); ``--json`` reports it as ``history`` (``null``: every bar).
"""

from __future__ import annotations

from typing import Any

import typer

from tradelab.cli._app import emit_json, fail
from tradelab.cli._options import DataOptions, ExecOptions, TradeOptions
from tradelab.cli.portfolio_cmd import (
    _execution,
    _no_single_symbol_options,
    find_portfolio,
    load_bars,
    strategy_on,
    universe_of,
)
from tradelab.errors import TradelabError


def portfolio_class(tl: Any, strategy: str | None, universe: str | None,
                    symbols: str | None) -> Any:
    """The portfolio strategy class for ``strategy``, or None for a one-symbol strategy
    (exit 2 when ``--universe``/``--symbols`` is given for one)."""
    if strategy is None:
        return None
    cls = find_portfolio(tl, strategy)
    if cls is None and (universe is not None or symbols is not None):
        fail(f"--universe/--symbols: {strategy!r} is not a portfolio strategy (see "
             "`tradelab strategies`)")
    return cls


def _fill(f: Any) -> dict[str, Any]:
    return {"time": f.at.isoformat(), "symbol": f.symbol, "side": f.side,
            "quantity": str(f.quantity), "price": str(f.price), "fees": str(f.fees)}


def _per_symbol(engine: Any) -> dict[str, Any]:
    out = {}
    for s, p in sorted(engine.portfolio.positions.items()):
        out[s] = {"quantity": str(p.quantity), "last_price": str(p.last_price),
                  "market_value": str(p.market_value), "realized_pnl": str(p.realized_pnl),
                  "fills": sum(1 for f in engine.fills if f.symbol == s)}
    return out


def require_weights_check(strat: Any, bars: dict[str, Any], force: bool) -> None:
    """Refuse a strategy whose weights fail ``tradelab check`` on the bars it is about to
    trade (a look-ahead, or a ``decision_window`` too small for what the weights read:
    the engine would decide otherwise than research) unless ``--force``."""
    from tradelab.data.universe import align
    from tradelab.strategy.portfolio import check_weights_lookahead

    try:
        report = check_weights_lookahead(strat, align(bars))
    except ValueError as exc:  # fewer bars than the warmup: nothing could be checked
        if not force:
            fail(str(exc))
        typer.echo(f"warning: running unchecked (--force): {exc}", err=True)
        return
    if report.ok:
        return
    first = (report.offenses or report.window_offenses)[0]
    if force:
        typer.echo(f"warning: running despite a failed check (--force): {first}", err=True)
        return
    fail(f"{strat.name} fails `tradelab check`: {first} (fix it, or pass --force)")


def paper_json(engine: Any, result: Any, bars: dict[str, Any], execution: Any,
               source: str) -> dict[str, Any]:
    """``paper --json``: every key of a portfolio ``backtest --json``, with the same
    meaning, computed from the engine's book by the backtest's own figure functions
    (:func:`~tradelab.research.portfolio_result.engine_summary`), plus ``run_id`` and
    the engine's own keys (``account``, ``cash``, ``equity``, ``history``, ``status``,
    ``timestamps``, ``total_return``, ``engine_per_symbol``: the Decimal positions)."""
    from tradelab.data.universe import align
    from tradelab.research.conventions import periods_per_year
    from tradelab.research.portfolio_result import engine_summary
    from tradelab.strategy.portfolio import rebalance_bars

    desk = engine.rebalancer
    panel = align(bars)
    # The bars the schedule decided on, as a backtest counts them (n_rebalances).
    decided = rebalance_bars(panel.index, desk.schedule, desk.strategy.target_weights(panel))
    summary = engine_summary(desk.strategy, panel, execution, result.fills,
                             result.equity_curve, periods_per_year(panel.index, None),
                             desk.schedule, int(decided.sum()))
    if execution.borrow_fee:  # as a backtest reports them (the paper broker charges them)
        broker = engine.broker
        summary["stats"].update(borrow_fees=float(getattr(broker, "borrow_paid", 0.0)),
                                borrow_accrued=float(sum(getattr(broker, "borrow_accrued",
                                                                 {}).values(), 0.0)))
    return {"kind": "portfolio", "source": source, "bars": len(panel),
            "start": panel.index[0].isoformat(), "end": panel.index[-1].isoformat(),
            "close_only": panel.close_only, "fills": len(result.fills), **summary,
            "orders": [_fill(f) for f in result.fills],
            "run_id": result.run_id, "account": result.account,
            "timestamps": len(result.equity_curve), "equity": str(result.equity),
            "cash": str(result.cash), "total_return": result.total_return,
            "status": result.stopped, "history": desk.history,
            "engine_per_symbol": _per_symbol(engine)}


def live_json(engine: Any, result: Any, spec: str, source: str) -> dict[str, Any]:
    """``paper --feed ... --json``: the engine's keys of :func:`paper_json` (the research
    figures need the whole panel up front, which a live run does not have), the fills,
    and the outcome counts of the feed and of the time stamps (``stamps``)."""
    stamps = engine.feed
    return {"kind": "portfolio", "feed": spec, "source": source, "fills": len(result.fills),
            "orders": [_fill(f) for f in result.fills], "run_id": result.run_id,
            "account": result.account, "timestamps": len(result.equity_curve),
            "bars": result.bars, "equity": str(result.equity), "cash": str(result.cash),
            "total_return": result.total_return, "status": result.stopped,
            "history": engine.rebalancer.history, "engine_per_symbol": _per_symbol(engine),
            "stamps": stamps.stats(),
            "feed_stats": stamps.feed.stats() if callable(getattr(stamps.feed, "stats", None))
            else {}}


def venue_keys(engine: Any) -> dict[str, Any]:
    """What ``live --json`` adds for a portfolio at a real venue: the broker, how its
    orders were sized, the rebalances and the reconciliations."""
    summary = engine.summary()
    # the keys of a one-symbol live run's reconciliations (engine_cmd), not imported:
    # engine_cmd hands portfolio strategies over to this module
    recon = [{"trigger": r.trigger, "ok": r.ok, "booked_fills": r.booked_fills,
              "adopted": r.adopted,
              "findings": [{"kind": f.kind, "symbol": f.symbol, "detail": f.detail}
                           for f in r.findings]} for r in engine.reconciliations]
    return {"broker": engine.broker.name, "sizing": summary["sizing"],
            "rebalances_done": summary["rebalances_done"],
            "rebalance_unfinished": summary["rebalance_unfinished"], "reconciliations": recon}


def stamps_line(stats: dict[str, Any]) -> str:
    """One line of a live portfolio run's time stamps (``tradelab.feeds.stamps``)."""
    late = ", ".join(f"{s} {n}" for s, n in sorted(stats["late_by_symbol"].items()))
    return (f"time stamps: complete {stats['complete']}, by cut-off {stats['cutoff']} "
            f"({stats['cutoff_seconds']:g} s), by a later bar {stats['superseded']}, at the end "
            f"{stats['end']}; late bars not applied {stats['late']}" + (f" ({late})" if late else "")
            + (f", duplicates {stats['duplicate']}" if stats["duplicate"] else ""))


def paper(tl: Any, cls: Any, params: dict[str, str], data: DataOptions, ex: ExecOptions,
          trade: TradeOptions, universe: str | None, symbols: str | None, *, account: str | None,
          db: str | None, speed: str, as_json: bool, force: bool = False,
          feed: str = "replay", broker: str | None = None, adopt: bool = False,
          resume: int | None = None) -> None:
    """Paper-trade a portfolio strategy on a replay of its universe or on a live ``feed``
    (persisted), after :func:`require_weights_check` on the ``--source`` bars; with
    ``broker`` (``tradelab live``) at that real venue, on the live ``feed``
    (:mod:`tradelab.engine.live_rebalance`), continuing run ``resume`` if given (a replay
    after its last processed time stamp; at a venue :mod:`tradelab.engine.live_resume`)."""
    from tradelab.app.feeds import build_feed, describe
    from tradelab.data.sample import is_close_only

    _no_single_symbol_options(ex, trade)
    if broker is not None and ex.borrow_fee:
        fail(f"--borrow-fee {ex.borrow_fee}: a real venue bills borrow itself; the borrow fee "
             "is a convention of backtests and paper runs")
    if resume is not None and broker is None and feed != "replay":
        # The replay continues after the run's last processed time stamp; a paper run on
        # a live feed has no bars to rebuild its panel from but the feed's own.
        fail(f"--resume {resume}: a paper portfolio run resumes on its replay (leave out "
             f"--feed {feed}); on a live feed, start a new run")
    names = universe_of(cls, universe, symbols)
    execution = _execution(tl, ex)
    if resume is not None:  # the run's stored convention (a flag with another value: exit 2)
        from tradelab.cli._run_options import stored_execution

        execution = stored_execution(tl.open_store(db), resume, ex) or execution
    overrides = {"account": account} if account else {}
    strat = strategy_on(cls, params, names)
    try:
        bars, source = load_bars(tl, data, names)
        require_weights_check(strat, bars, force)
        live = build_feed(tl, feed, list(names), source=data.source, start=data.start,
                          end=data.end)
        venue: dict[str, Any] = {} if broker is None else {"broker": broker, "adopt": adopt,
                                                           "resume": resume}
        if live is None and broker is not None:
            raise ValueError(f"--feed {feed}: a portfolio trades at a real venue on a live "
                             "feed (ws://..., ccxt, poll), not on a replay")
        if live is None:
            engine = tl.portfolio_engine(strat, bars=bars, source=source, execution=execution,
                                         db=db, speed=speed if speed == "max" else float(speed),
                                         resume=resume, **overrides)
        else:  # the checked bars tell whether the source's bars are closes only
            engine = tl.portfolio_engine(strat, feed=live, universe=list(names), source=source,
                                         execution=execution, db=db,
                                         close_only=all(is_close_only(b) for b in bars.values()),
                                         **venue, **overrides)
        result = engine.run()
    except (TradelabError, ValueError) as exc:
        fail(str(exc))
    at_venue = venue_keys(engine) if broker is not None else {}
    if as_json:
        emit_json(paper_json(engine, result, bars, execution, source) if live is None
                  else {**live_json(engine, result, feed, source), **at_venue})
        return
    if at_venue:
        typer.echo(f"{cls.name} live run {result.run_id} at {at_venue['broker']}: sized at "
                   f"{at_venue['sizing']}; {at_venue['rebalances_done']} rebalance(s) done"
                   + (", one unfinished" if at_venue["rebalance_unfinished"] else "")
                   + f", {len(at_venue['reconciliations'])} reconciliation(s)")
    mode = "paper" if broker is None else "live"
    typer.echo(f"{cls.name} {mode} run {result.run_id} on {len(names)} symbols "
               f"({source if live is None else feed}): "
               f"{result.bars} bars, {len(result.fills)} fills, equity {result.equity:.2f} "
               f"({result.total_return:+.2%}), {result.stopped}")
    if live is not None:
        typer.echo(stamps_line(engine.feed.stats()))
        typer.echo(describe(live.stats()))


def parity(tl: Any, cls: Any, params: dict[str, str], data: DataOptions, ex: ExecOptions,
           trade: TradeOptions, universe: str | None, symbols: str | None, *,
           as_json: bool) -> None:
    """Backtest and engine replay of a portfolio strategy on the same bars; exit 1 on a
    divergence (fills, or equity beyond 1e-9 relative)."""
    from tradelab.data.universe import align
    from tradelab.parity_portfolio import compare_portfolio
    from tradelab.research.portfolio import backtest_portfolio

    _no_single_symbol_options(ex, trade)
    names = universe_of(cls, universe, symbols)
    execution = _execution(tl, ex)
    strat = strategy_on(cls, params, names)
    try:
        bars, source = load_bars(tl, data, names)
        research = backtest_portfolio(strat, panel=align(bars), execution=execution)
        engine = tl.portfolio_engine(strat, bars=bars, source=source, execution=execution,
                                     persist=False)  # in memory: a comparison
        result = engine.run()
    except (TradelabError, ValueError) as exc:
        fail(str(exc))
    report = compare_portfolio(research, result.fills, result.equity_curve)
    if as_json:
        per = research.per_symbol.reset_index().to_dict(orient="records")
        emit_json({"kind": "portfolio", "strategy": cls.name, "params": strat.params,
                   "symbols": list(names), "source": source,
                   "history": engine.rebalancer.history, **report.to_dict(),
                   "research": {"stats": research.stats, "per_symbol": per},
                   "engine": {"equity": str(result.equity), "per_symbol": _per_symbol(engine)},
                   "orders": [_fill(f) for f in result.fills]})
    else:
        verdict = "OK" if report.ok else "DIVERGED"
        typer.echo(f"{cls.name} on {len(names)} symbols: {verdict}: {report.fills_engine} engine "
                   f"fills vs {report.fills_research} research, equity max relative difference "
                   f"{report.max_equity_rel_diff:.2e} over {report.bars_compared} time stamps")
    if not report.ok:
        raise typer.Exit(1)


__all__ = ["live_json", "paper", "paper_json", "parity", "portfolio_class", "require_weights_check",
           "venue_keys"]
