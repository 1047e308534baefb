"""The sections after the first screen are built when first opened, and show the same data.

A session's first document holds the tiles, the equity curve, the controls, positions
and fills only; each other section is a closed card whose views (and Bokeh models) are
created when it opens, filled from the latest snapshot. Closed again, a section is not
refreshed; reopened, it shows the latest snapshot at once.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
import panel as pn
import pytest
from bokeh.document import Document
from bokeh.models import Plot

from tests.unit.api.helpers import PASSWORDS, T0
from tradelab.dashboard.app import DashboardApp
from tradelab.dashboard.services import DashboardServices
from tradelab.dashboard.state import COLUMNS
from tradelab.dashboard.views import LAZY_PARTS, LiveViews

#: The first screen's positions and fills are plain HTML tables (.htmltable), no Tabulator.
FIRST_SCREEN_TABLES: set[str] = set()


def _served(services: DashboardServices, user: str = "viewer") -> tuple[DashboardApp, Document]:
    """A logged-in app rendered into a Bokeh document, as the server does for a page."""
    app = DashboardApp(services, live=False)
    app.login(user, PASSWORDS[user])
    doc = Document()
    doc.add_root(app.root.get_root(doc))
    return app, doc


def _tables(doc: Document) -> dict[str, Any]:
    """The document's Tabulator models by the view they show (named by their columns)."""
    from panel.models.tabulator import DataTabulator

    by_columns = {tuple(cols): name for name, cols in COLUMNS.items()}
    out = {}
    for model in doc.models:
        if isinstance(model, DataTabulator):
            columns: list[Any] = getattr(model, "columns")  # noqa: B009 (typed as the property)
            fields = tuple(c.field for c in columns if c.field != "index")
            out[by_columns[fields]] = model
    return out


def _plots(doc: Document) -> set[str]:
    return {str(getattr(m.title, "text", m.title)) for m in doc.models
            if isinstance(m, Plot) and m.title is not None}


def test_the_first_document_holds_only_the_first_screen(services: DashboardServices) -> None:
    app, doc = _served(services)
    assert set(_tables(doc)) == FIRST_SCREEN_TABLES
    assert _plots(doc) == {"Equity (selected run)"}
    texts = [html.unescape(str(m.text)) for m in doc.models if type(m).__name__ == "HTML"]
    shown = [t for t in texts if "class='tl-table'" in t]
    assert len(shown) == 2 and any("data-testid='fills-table'" in t for t in shown)
    assert app.views.built == set()
    assert [s.is_open for s in app.sections.values()] == [False] * len(app.sections)
    # The data a closed section shows is in no model of the page (nor the section's HTML).
    texts = {str(getattr(m, "text", "")) for m in doc.models}
    assert not any("feed-state" in t for t in texts)


def test_opening_a_section_adds_its_models_with_the_snapshots_data(
        services: DashboardServices) -> None:
    app, doc = _served(services)
    risk = app.sections["Risk events and alerts (account)"]
    risk.open()
    assert app.views.built == {"risk_events"}
    tables = _tables(doc)
    assert set(tables) == FIRST_SCREEN_TABLES | {"risk_events"}
    assert list(tables["risk_events"].source.data["message"]) == ["near the limit"]
    app.sections["Daily P&L (selected run)"].open()
    assert _plots(doc) == {"Equity (selected run)", "Daily P&L (UTC days)"}
    app.sections["Feed health and data quality (selected run)"].open()
    assert app.views.built == {"risk_events", "daily", "feed", "quality"}
    assert "data-testid='feed-state'" in app.views.feed.object


def test_every_section_opened_shows_what_eager_views_show(services: DashboardServices) -> None:
    app, _doc = _served(services, "trader")
    for section in app.sections.values():
        section.open()
    assert app.views.built == set(LAZY_PARTS)
    snap = app.state.snapshot
    eager = LiveViews()
    for name in LAZY_PARTS:  # built before the snapshot arrives, then updated with it
        getattr(eager, name)
    eager.update(snap)
    lazy = app.views
    for name in ("orders", "trades", "symbols", "quality", "risk_events", "runs", "job_runs",
                 "reconciliations", "events"):
        pd.testing.assert_frame_equal(getattr(lazy, name).value, getattr(eager, name).value)
    assert lazy.feed.object == eager.feed.object
    for a, b in ((lazy.daily.source, eager.daily.source),
                 (lazy.price.candles, eager.price.candles),
                 (lazy.price.buys, eager.price.buys)):
        assert a.data.keys() == b.data.keys()
        for key in a.data:
            assert list(a.data[key]) == list(b.data[key]), key
    assert lazy.price.figure.title.text == eager.price.figure.title.text
    assert lazy.runs.value["strategy"].tolist() == ["sma_cross"]  # the seeded run


def _risk_event(services: DashboardServices, message: str) -> None:
    with services.store.transaction() as tx:
        tx.add_risk_event("paper", "max_position", "warning", message, T0, "sma_cross")


def test_a_section_follows_the_store_while_open_and_not_while_closed(
        services: DashboardServices) -> None:
    app, _doc = _served(services)
    risk = app.sections["Risk events and alerts (account)"]
    messages = lambda: sorted(app.views.risk_events.value["message"])  # noqa: E731
    _risk_event(services, "first")
    assert app.poll() and app.views.built == set()  # unopened: nothing built, nothing sent
    risk.open()
    assert messages() == ["first", "near the limit"]
    _risk_event(services, "second")
    assert app.poll()
    assert messages() == ["first", "near the limit", "second"]  # open: live
    risk.close()
    _risk_event(services, "third")
    assert app.poll()
    assert len(app.state.snapshot.risk_events) == 4
    assert messages() == ["first", "near the limit", "second"]  # closed: not refreshed
    risk.open()
    assert messages() == ["first", "near the limit", "second", "third"]  # at once


@pytest.mark.parametrize("title", ["Closed trades (selected run)", "Engine runs (account)"])
def test_opening_twice_builds_once(services: DashboardServices, title: str) -> None:
    app, _doc = _served(services)
    section = app.sections[title]
    section.open()
    first = list(section.card.objects)
    section.close()
    section.open()
    assert section.card.objects == first and len(first) == 1
    assert isinstance(first[0], pn.widgets.Tabulator)
