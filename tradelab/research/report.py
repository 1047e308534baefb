"""Standalone HTML reports: stats, trades, plots, heatmaps; all resources inline, so the
file opens offline and can be mailed or archived with a job run."""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tradelab.offline_assets import inline_cdn_assets
from tradelab.research.result import BacktestResult


def _backtest_section(pn: Any, result: BacktestResult) -> Any:
    trades = result.trades
    shown = trades if len(trades) <= 200 else trades.tail(200)
    note = "" if len(trades) <= 200 else f" (last 200 of {len(trades)})"
    ex = result.execution
    conv = (f"cash {ex.cash:,.2f} · fees {ex.fees:.4%} + {ex.fixed_fees:,.2f}/order · "
            f"slippage {ex.slippage:.4%} · size {ex.size} {ex.size_type} · fill {ex.fill} · "
            f"{'fractional' if ex.fractional else 'whole'} units")
    return pn.Column(
        pn.pane.HTML(f"<h2>{html.escape(result.title)}</h2><p>{html.escape(conv)}</p>"),
        pn.Row(pn.pane.HTML(result.stats_table().to_html(header=False), width=280),
               pn.pane.HoloViews(result.plot(), backend="bokeh")),
        pn.pane.HTML(f"<h3>Trades{note}</h3>"),
        pn.pane.HTML(shown.to_html(index=False, float_format=lambda x: f"{x:,.4f}"),
                     sizing_mode="stretch_width"),
    )


def _sweep_section(pn: Any, result: Any) -> Any:
    parts = [pn.pane.HTML(
        f"<h2>{html.escape(result.strategy)} sweep</h2><p>{result.n_valid} combinations "
        f"({result.n_invalid} invalid skipped) · ranked by {html.escape(result.metric)}</p>"),
        pn.pane.HTML(result.top(20).to_html(index=False, float_format=lambda x: f"{x:,.4f}"))]
    if len(result.grid) >= 2:
        x, y = list(result.grid)[:2]
        parts.append(pn.pane.HoloViews(result.heatmap(x, y), backend="bokeh"))
    return pn.Column(*parts)


def write_report(result_or_results: Any, path: str | Path, title: str = "tradelab report") -> Path:
    """Write a standalone HTML report and return its path.

    Parameters
    ----------
    result_or_results
        A :class:`BacktestResult`, a :class:`~tradelab.research.sweep.SweepResult`,
        or an iterable of them (one section each).
    path
        Output file; parent folders are created.
    title
        The page title.
    """
    import panel as pn
    from bokeh.resources import INLINE

    from tradelab.research.sweep import SweepResult

    items: Iterable[Any]
    if isinstance(result_or_results, (BacktestResult, SweepResult)):
        items = [result_or_results]
    else:
        items = list(result_or_results)
    sections = []
    for item in items:
        if isinstance(item, BacktestResult):
            sections.append(_backtest_section(pn, item))
        elif isinstance(item, SweepResult):
            sections.append(_sweep_section(pn, item))
        else:
            raise TypeError(f"cannot report on {type(item).__name__}")
    if not sections:
        raise ValueError("nothing to report")
    # HTML panes rather than Markdown: Markdown pulls MathJax from a CDN.
    page = pn.Column(pn.pane.HTML(f"<h1>{html.escape(title)}</h1>"), *sections)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    page.save(str(out), resources=INLINE, embed=False, title=title)
    # INLINE covers the JS; nested HoloViews panes still name Panel's CSS on its CDN.
    out.write_text(inline_cdn_assets(out.read_text(encoding="utf-8")), encoding="utf-8")
    return out
