"""Standalone HTML reports: stats, trades, plots, heatmaps; all resources inline, so the
file opens offline and can be mailed or archived with a job run."""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradelab.offline_assets import inline_cdn_assets
from tradelab.research.result import BacktestResult

#: Trades tables longer than this show their first and last ``PREVIEW // 2`` rows, with
#: every row in a collapsed ``<details>`` below: no JavaScript (the page works offline)
#: and no 9,000 px page for a few hundred trades.
PREVIEW = 20
MAX_DECIMALS = 8


def decimals(values: Any, limit: int = MAX_DECIMALS) -> int:
    """The fewest decimals (at most ``limit``) that show every value of ``values``
    exactly to within a millionth of its own size: 0 for whole units."""
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr) & (arr != 0)]
    for d in range(limit + 1):
        if np.all(np.abs(np.round(arr, d) - arr) <= 1e-6 * np.abs(arr)):
            return d
    return limit


def time_format(index: pd.DatetimeIndex) -> str:
    """``%Y-%m-%d`` for daily (or coarser) bars, minutes for intraday, seconds if needed."""
    if len(index) == 0 or (index == index.normalize()).all():
        return "%Y-%m-%d"
    if (index == index.floor("min")).all():
        return "%Y-%m-%d %H:%M"
    return "%Y-%m-%d %H:%M:%S"


def format_trades(trades: pd.DataFrame, index: pd.DatetimeIndex) -> pd.DataFrame:
    """The trades table as text for people.

    Times in the bars' resolution (``index``: the backtest's bars); quantities as
    whole units when they are, else to the decimals they need; prices to the
    decimals they need (at least 2); money to cents; returns as percentages. An open
    trade's exit time and price read "open" (its pnl and return are marked at the
    last close), never ``NaT``/``NaN``.
    """
    fmt = time_format(index)
    out = pd.DataFrame(index=trades.index)

    def times(col: pd.Series) -> pd.Series:
        return col.map(lambda t: "open" if pd.isna(t) else pd.Timestamp(t).strftime(fmt))

    def numbers(col: pd.Series, d: int, missing: str = "n/a") -> pd.Series:
        return col.map(lambda v: missing if pd.isna(v) else f"{v:,.{d}f}")

    prices = pd.concat([trades["entry_price"], trades["exit_price"]])
    price_d = max(2, decimals(prices))
    out["entry_time"] = times(trades["entry_time"])
    out["exit_time"] = times(trades["exit_time"])
    out["side"] = trades["side"]
    out["quantity"] = numbers(trades["quantity"], decimals(trades["quantity"]))
    out["entry_price"] = numbers(trades["entry_price"], price_d)
    out["exit_price"] = numbers(trades["exit_price"], price_d, missing="open")
    out["fees"] = numbers(trades["fees"], 2)
    out["pnl"] = numbers(trades["pnl"], 2)
    out["return"] = trades["return"].map(lambda v: "n/a" if pd.isna(v) else f"{v:.2%}")
    out["status"] = trades["status"]
    return out


def trades_html(trades: pd.DataFrame, index: pd.DatetimeIndex, preview: int = PREVIEW) -> str:
    """The trades as HTML: all of them if at most ``preview``, else the first and last
    ``preview // 2`` with the full table in a collapsed ``<details>``."""
    def table(rows: pd.DataFrame) -> str:
        return rows.to_html(index=False, classes="trades", border=0)

    text = format_trades(trades, index)
    # Figures right-aligned so digits line up; some air between columns.
    style = ("<style>table.trades{border-collapse:collapse}"
             "table.trades td,table.trades th{padding:1px 8px;text-align:right}</style>")
    tz = getattr(index, "tz", None)
    zone = f"; times {tz}" if tz is not None else ""
    n = len(text)
    if n <= preview:
        return f"{style}<h3>Trades ({n}{zone})</h3>{table(text)}"
    half = preview // 2
    return (f"{style}<h3>Trades ({n}{zone})</h3>"
            f"<p>First and last {half} of {n}:</p>"
            f"{table(pd.concat([text.head(half), text.tail(half)]))}"
            f"<details class='all-trades'><summary>All {n} trades</summary>"
            f"{table(text)}</details>")


def _backtest_section(pn: Any, result: BacktestResult) -> Any:
    ex = result.execution
    conv = (f"cash {ex.cash:,.2f} · fees {ex.fees:.4%} + {ex.fixed_fees:,.2f}/order · "
            f"slippage {ex.slippage:.4%} · size {ex.size} {ex.size_type} · fill {ex.fill} · "
            f"{'fractional' if ex.fractional else 'whole'} units")
    return pn.Column(
        pn.pane.HTML(f"<h2>{html.escape(result.title)}</h2><p>{html.escape(conv)}</p>"),
        pn.Row(pn.pane.HTML(result.stats_table().to_html(header=False), width=280),
               pn.pane.HoloViews(result.plot(), backend="bokeh")),
        pn.pane.HTML(trades_html(result.trades, result.bars.index), sizing_mode="stretch_width"),
    )


def _sweep_section(pn: Any, result: Any) -> Any:
    parts = [pn.pane.HTML(
        f"<h2>{html.escape(result.strategy)} sweep</h2><p>{result.n_valid} combinations "
        f"({result.n_invalid} invalid skipped) · ranked by {html.escape(result.metric)}</p>"),
        pn.pane.HTML(result.top(20).to_html(index=False, na_rep="n/a",
                                            float_format=lambda x: f"{x:,.4f}"))]
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
