"""The first screen's plain HTML tables: what they show, how, and what they never do."""

from __future__ import annotations

import html
import re

import pandas as pd
import pytest

from tradelab.dashboard.htmltable import HtmlTable, cell_text


@pytest.mark.parametrize(("value", "money", "shown"), [
    (1234567.5, True, "1,234,567.50"),
    (-0.125, True, "-0.12"),  # an exact tie rounds half to even (Python formatting)
    (3, True, "3.00"),
    (2.0, False, "2"),
    (0.5, False, "0.5"),
    (1e-8, False, "1e-08"),
    (12345678901.0, False, "12345678901"),
    (None, False, ""),
    (float("nan"), True, ""),
    (pd.NaT, False, ""),
    (True, False, "true"),
    ("SPX", False, "SPX"),
])
def test_cell_text(value: object, money: bool, shown: str) -> None:
    assert cell_text(value, money) == shown


def _cells(table: HtmlTable, field: str) -> list[str]:
    text = table.pane.object
    return [html.unescape(m) for m in re.findall(
        rf"<td data-field='{field}'(?: class='num')?>(.*?)</td>", text)]


def test_rows_in_the_frames_order_with_money_columns_formatted() -> None:
    table = HtmlTable(["symbol", "quantity", "price"], money=["price"], testid="t")
    table.value = pd.DataFrame({"symbol": ["SPX", "NDX"], "quantity": [1.5, 2.0],
                                "price": [4700.5, 15000.0]})
    assert _cells(table, "symbol") == ["SPX", "NDX"]
    assert _cells(table, "quantity") == ["1.5", "2"]
    assert _cells(table, "price") == ["4,700.50", "15,000.00"]
    assert "data-testid='t'" in table.pane.object and "data-rows='2'" in table.pane.object
    assert table.value["symbol"].tolist() == ["SPX", "NDX"]


def test_text_from_the_store_is_escaped_and_a_missing_column_shows_empty() -> None:
    table = HtmlTable(["symbol", "note"])
    table.value = pd.DataFrame({"symbol": ["<img src=x onerror=alert(1)>"]})
    assert "<img" not in table.pane.object
    assert _cells(table, "symbol") == ["<img src=x onerror=alert(1)>"]
    assert _cells(table, "note") == [""]


def test_an_empty_frame_says_none_and_unchanged_data_sends_nothing() -> None:
    table = HtmlTable(["symbol"])
    assert "data-rows='0'" in table.pane.object and ">none<" in table.pane.object
    frame = pd.DataFrame({"symbol": ["SPX"]})
    table.value = frame
    sent: list[object] = []
    table.pane.param.watch(lambda e: sent.append(e.new), "object")
    table.value = frame.copy()
    assert sent == []
    table.value = pd.DataFrame({"symbol": ["NDX"]})
    assert len(sent) == 1
