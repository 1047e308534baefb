"""Standalone HTML reports: stats, trades, plots, heatmaps; all resources inline, so the
file opens offline and can be mailed or archived with a job run."""

from __future__ import annotations

import base64
import html
import mimetypes
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

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


def inline_cdn_assets(page: str) -> str:
    """Replace Panel's and Bokeh's CDN URLs in HTML ``page`` with ``data:`` URLs of the installed files.

    Panel's inline-stylesheet pass misses HoloViews plots (in a notebook, where
    HoloViews renders them itself, and nested in a saved page), so even with
    inline resources the page names Panel's layout and theme CSS on Panel's
    CDN (``ImportedStyleSheet`` models in the embedded document); a notebook
    that loaded its plotting extension without ``inline`` names Bokeh's and
    Panel's JS there too. The same files ship with the installed packages; a
    ``data:`` URL keeps the document's JSON valid (base64 needs no escaping).
    URLs of another version, or of files not installed, are left alone (the
    browser test reports them).
    """
    import bokeh
    from bokeh.util.paths import bokehjs_path
    from panel.io.resources import CDN_DIST, DIST_DIR

    def panel_file(match: re.Match[str]) -> str:
        # Bundled packages keep their npm spec in the path (``tabulator-tables@6.4.0``,
        # ``es-module-shims@^1.10.0``, sometimes quoted as ``%5E``): the folder is not quoted.
        path = Path(DIST_DIR) / unquote(match.group(1))
        if ".." in Path(match.group(1)).parts or not path.is_file():
            return match.group(0)
        return _data_url(path)

    def bokeh_file(match: re.Match[str]) -> str:
        component, minified, ext = match.groups()
        path = Path(bokehjs_path()) / ext / f"bokeh{component or ''}{minified or ''}.{ext}"
        return _data_url(path) if path.is_file() else match.group(0)

    page = re.sub(re.escape(CDN_DIST) + r"([A-Za-z0-9_./@%^+~-]+)(?:\?v=[A-Za-z0-9_.-]*)?", panel_file, page)
    bokeh_cdn = (r"https://cdn\.bokeh\.org/bokeh/(?:release|dev)/bokeh(-[a-z]+)?-"
                 + re.escape(bokeh.__version__) + r"(\.min)?\.(js|css)")
    return re.sub(bokeh_cdn, bokeh_file, page)


def _data_url(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    data = path.read_bytes()
    if mime == "text/css":
        # Relative url(...) in the CSS (spinners, icons) would resolve against the data:
        # URL and fail: embed the files it names as well.
        def nested(m: re.Match[str]) -> str:
            target = (path.parent / m.group(2)).resolve()
            return f"url('{_data_url(target)}')" if target.is_file() else m.group(0)

        text = re.sub(r"""url\((['"]?)(?!data:|https?:|/)([^'")]+)\1\)""", nested,
                      data.decode("utf-8"))
        data = text.encode("utf-8")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
