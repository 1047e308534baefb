"""A read-only table drawn as plain HTML: the first screen's positions and recent fills.

Why not Tabulator there: a Tabulator costs the server about twenty Bokeh models
(columns, editors, formatters) to build and serialize, and the browser a script
that measures the page several times while it lays the table out; on the first
page after a login the two tables were a third of the browser's work. These two
tables are short (the run's positions, its newest :data:`~.state.FILLS_SHOWN`
fills), read-only and sorted by the server, which is all this class does: one
HTML pane whose text is replaced with the data. The sections opened later keep
Tabulator (sorting and column widths are worth their cost there).

Cells carry ``data-field`` (the column) and rows ``data-row`` (position in the
frame), so tests and scripts can read a column without depending on the layout.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import Any

import pandas as pd
import panel as pn

#: Table look: a header that stays in view while the body scrolls; numbers right-aligned.
_STYLE = ("<style>"
          ".tl-table{border-collapse:collapse;width:100%;font-size:13px;"
          "font-variant-numeric:tabular-nums}"
          ".tl-table th{position:sticky;top:0;background:#f9fafb;text-align:left;"
          "font-weight:600;color:#374151;border-bottom:1px solid #e5e7eb;padding:4px 8px}"
          ".tl-table td{border-bottom:1px solid #f1f3f5;padding:3px 8px;white-space:nowrap}"
          ".tl-table td.num{text-align:right}"
          ".tl-empty{color:#9ca3af;padding:6px 8px}"
          "</style>")


def cell_text(value: Any, money: bool) -> str:
    """How one value is shown: money with two decimals and thousands separators, other
    numbers as short as they are exact (``1``, ``0.5``), missing values empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        if money:
            return f"{value:,.2f}"
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value) if isinstance(value, float) else str(value)
    return str(value)


class HtmlTable:
    """A read-only table (``value`` a DataFrame) shown as one HTML pane.

    Parameters
    ----------
    columns
        The columns shown, in order (missing ones in a frame show empty).
    money
        Columns shown as money (two decimals, thousands separators).
    height
        The pane's height in pixels; longer tables scroll under a fixed header.
    testid
        The ``data-testid`` of the ``<table>`` element.
    """

    def __init__(self, columns: Iterable[str], *, money: Iterable[str] = (), height: int = 240,
                 testid: str = "") -> None:
        self.columns = list(columns)
        self.money = frozenset(money)
        self.testid = testid
        self._value = pd.DataFrame(columns=self.columns)
        self.pane = pn.pane.HTML(self._html(self._value), sizing_mode="stretch_width",
                                 height=height, styles={"overflow-y": "auto"})

    @property
    def value(self) -> pd.DataFrame:
        """The frame shown (set it to show another)."""
        return self._value

    @value.setter
    def value(self, frame: pd.DataFrame) -> None:
        self._value = frame
        text = self._html(frame)
        if text != self.pane.object:  # unchanged data sends nothing to the browser
            self.pane.object = text

    def _html(self, frame: pd.DataFrame) -> str:
        head = "".join(f"<th data-field='{html.escape(c)}'>{html.escape(c)}</th>"
                       for c in self.columns)
        columns = [(c, c in self.money,
                    frame[c].tolist() if c in frame.columns else [None] * len(frame))
                   for c in self.columns]
        rows = []
        for i in range(len(frame)):
            cells = []
            for name, money, values in columns:
                v = values[i]
                num = " class='num'" if isinstance(v, int | float) and not isinstance(v, bool) \
                    else ""
                cells.append(f"<td data-field='{html.escape(name)}'{num}>"
                             f"{html.escape(cell_text(v, money))}</td>")
            rows.append(f"<tr data-row='{i}'>{''.join(cells)}</tr>")
        body = "".join(rows) or (f"<tr><td class='tl-empty' colspan='{len(self.columns)}'>"
                                 "none</td></tr>")
        testid = f" data-testid='{html.escape(self.testid)}'" if self.testid else ""
        return (f"{_STYLE}<table class='tl-table'{testid} data-rows='{len(frame)}'>"
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def __panel__(self) -> pn.pane.HTML:
        return self.pane


__all__ = ["HtmlTable", "cell_text"]
