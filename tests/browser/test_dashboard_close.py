"""Close one position from the dashboard in a real browser, while an engine trades.

The engine runs in a thread of this process, replaying bars into the SQLite file
the dashboard server (its own process) reads; every bar it records refreshes the
page. The confirmation must stay on the page across those refreshes until the
trader answers it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Dashboard, keep_screenshot, login, seed_run, wait_until
from tradelab.dashboard.closeview import quantity_text
from tradelab.store import Store
from tradelab.store.close_repo import close_requests
from tradelab.strategy.base import Signals, Strategy

pytestmark = pytest.mark.slow
TRADING_WITHIN = 120.0  # s: the engine (a thread of this process) holds its position
CLOSED_WITHIN = 60.0  # s: confirmed → the store and the page show the position flat
REFRESHES = 3  # new bars the page shows while the confirmation waits

# Panel draws into shadow roots, which document.querySelector does not enter.
DEEP = """const deep = (sel, root = document) => {
  const out = [...root.querySelectorAll(sel)];
  for (const el of root.querySelectorAll('*')) if (el.shadowRoot) out.push(...deep(sel, el.shadowRoot));
  return out;
};
const one = id => deep(`[data-testid='${id}']`)[0];"""
# The bar the page's figures are marked at.
AS_OF = "() => {" + DEEP + "return one('as-of')?.getAttribute('data-at') ?? null; }"
# A bar the page had not shown yet.
NEW_BAR = "seen => {" + DEEP + """
  const e = one('as-of');
  return e && !seen.includes(e.getAttribute('data-at'));
}"""


class _BuyFirstWeekAndHold(Strategy):
    """Buys in the replay's first days and never sells: only the Close can flatten it,
    and nothing buys it back afterwards (no entry signal after those days)."""

    name = "buy_first_week"
    description = "buy in early January 2010 and hold"

    def signals(self, bars: pd.DataFrame) -> Signals:
        index = pd.DatetimeIndex(bars.index)
        early = pd.Series((index.year == 2010) & (index.dayofyear <= 6), index=bars.index)
        return Signals(early, pd.Series(False, index=bars.index))


@pytest.fixture()
def holder(dashboard: Dashboard) -> Iterator[tuple[Any, threading.Thread]]:
    """A replay on account ``closing`` (4 bars/s, 2010-2018: it outlasts a slow page)."""
    import tradelab as tl

    settings = tl.load_config(environ=dashboard.environ)
    eng = tl.build(settings).engine(_BuyFirstWeekAndHold(), "SPX", source="sample",
                                    start="2010-01-01", end="2018-12-31", speed=4.0,
                                    flush_every=1, account="closing")
    thread = threading.Thread(target=eng.run, name="engine-closing", daemon=True)
    yield eng, thread
    eng.request_stop("test over")
    if thread.ident is not None:
        thread.join(60)
        assert not thread.is_alive()


def _picker(page: Any) -> Any:
    return page.get_by_label("Position", exact=True)


def test_a_trader_closes_one_position_after_confirming(
        dashboard: Dashboard, browser: Any, holder: tuple[Any, threading.Thread],
        tmp_path: Any) -> None:
    from tradelab.orders.model import client_order_id
    from tradelab.risk.manager import FLATTEN

    eng, thread = holder
    store = Store(dashboard.store_url)
    page = login(browser, dashboard.url, "trader")
    try:
        thread.start()
        wait_until(lambda: bool(store.positions("closing", include_flat=False)),
                   "the engine's position", TRADING_WITHIN)
        run = int(eng.run_id)
        page.locator("select").filter(has_text="paper").first.select_option(label="closing")
        expect(page.get_by_test_id("run-label")).to_have_attribute("data-run", str(run))
        expect(_picker(page)).to_have_value("SPX")
        [held] = store.positions("closing", include_flat=False)
        page.get_by_role("button", name="Close position…").click()
        ask = page.get_by_test_id("close-question")
        expect(ask).to_be_visible()
        expect(ask).to_have_attribute("data-symbol", "SPX")
        expect(ask).to_have_attribute("data-quantity", quantity_text(float(held.quantity)))
        expect(ask).to_contain_text(f"Close the SPX position of run {run}: sell "
                                    f"{quantity_text(float(held.quantity))} SPX?")
        # The engine keeps trading: each new bar refreshes the page, the question stays.
        seen = [page.evaluate(AS_OF)]
        for _ in range(REFRESHES):
            page.wait_for_function(NEW_BAR, arg=seen, polling=100)
            seen.append(page.evaluate(AS_OF))
            expect(ask).to_be_visible()
        assert close_requests(store, "closing") == []  # nothing happens before confirming
        confirm = page.get_by_role("button", name="Confirm close")
        confirm.click()
        expect(ask).to_be_hidden()

        # The engine closes it at its next store poll with one FLATTEN-tagged order.
        wait_until(lambda: not store.positions("closing", include_flat=False),
                   "the position flat in the store", CLOSED_WITHIN)
        [req] = close_requests(store, "closing", run)
        assert (req.symbol, req.status, req.requested_by) == ("SPX", "done", "trader")
        bars = {p.at for p in store.equity_curve("closing", run)}
        closing = {client_order_id(str(run), FLATTEN, "SPX", t, "sell") for t in bars}
        assert req.client_order_id in closing
        [fill] = [f for f in store.fills("closing", run) if f.client_order_id in closing]
        assert (fill.side, fill.quantity) == ("sell", held.quantity)
        # ... and the page shows it flat, with the request done and its order.
        expect(page.get_by_test_id("open-position-count")).to_have_attribute("data-count", "0")
        expect(page.get_by_test_id("close-request")).to_have_attribute("data-status", "done")
        expect(page.get_by_test_id("close-request")).to_have_attribute("data-order",
                                                                       req.client_order_id)
        expect(page.get_by_test_id("last-fill")).to_have_attribute("data-fill-id", fill.fill_id)
        expect(page.get_by_test_id("unrealized")).to_have_text("0.00")
        expect(page.get_by_role("button", name="Close position…")).to_be_disabled()
        assert not store.positions("closing", include_flat=False)  # not bought back
        page.get_by_text("Open positions (selected run)").scroll_into_view_if_needed()
        keep_screenshot(page, tmp_path, "dashboard-close-position.png")
    finally:
        page.context.close()
        store.close()


@pytest.fixture(scope="module")
def held_run(dashboard: Dashboard) -> tuple[str, int]:
    """A running run (no engine: nothing acts on a request) holding 10 SPX, on its own
    account; its account and id (the tests using it leave it as it was)."""
    with Store(dashboard.store_url) as store:
        run = seed_run(store, "held", datetime(2016, 3, 1, 20, tzinfo=UTC),
                       [100.0, 101.0, 102.5], finished=False)
    return "held", run


def test_cancel_leaves_the_position_and_no_close_request(
        dashboard: Dashboard, browser: Any, held_run: tuple[str, int], tmp_path: Any) -> None:
    account, run = held_run
    store = Store(dashboard.store_url)
    page = login(browser, dashboard.url, "trader")
    try:
        page.locator("select").filter(has_text="paper").first.select_option(label=account)
        expect(page.get_by_test_id("run-label")).to_have_attribute("data-run", str(run))
        expect(_picker(page)).to_have_value("SPX")
        page.get_by_role("button", name="Close position…").click()
        ask = page.get_by_test_id("close-question")
        expect(ask).to_have_attribute("data-quantity", "10")
        page.get_by_role("button", name="Cancel", exact=True).click()
        expect(ask).to_be_hidden()
        expect(page.get_by_role("button", name="Confirm close")).to_be_hidden()
        expect(page.get_by_test_id("open-position-count")).to_have_attribute("data-count", "1")
        expect(page.get_by_test_id("close-request")).to_have_count(0)
        assert close_requests(store, account) == []
        assert [(p.symbol, float(p.quantity))
                for p in store.positions(account, include_flat=False)] == [("SPX", 10.0)]
        keep_screenshot(page, tmp_path, "dashboard-close-cancelled.png")
    finally:
        page.context.close()
        store.close()


def test_a_viewer_cannot_close_a_position(dashboard: Dashboard, browser: Any,
                                          held_run: tuple[str, int]) -> None:
    account, run = held_run
    store = Store(dashboard.store_url)
    page = login(browser, dashboard.url, "viewer")
    try:
        page.locator("select").filter(has_text="paper").first.select_option(label=account)
        expect(page.get_by_test_id("run-label")).to_have_attribute("data-run", str(run))
        expect(page.get_by_test_id("open-position-count")).to_have_attribute("data-count", "1")
        expect(page.get_by_role("button", name="Close position…")).to_be_disabled()
        expect(_picker(page)).to_be_disabled()
        expect(page.get_by_test_id("close-question")).to_be_hidden()  # never asked
        assert close_requests(store, account) == []
    finally:
        page.context.close()
        store.close()
