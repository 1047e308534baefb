"""Truth per run, in a real browser, while an engine trades.

The account holds a finished run (seeded) and, once the test starts it, a running
one: an engine in a thread of this process replaying bars into the same SQLite
file the dashboard server (its own process) reads. The page follows the running
run by default; every tile read from the page equals what the store holds for
that run at the bar the page says its figures are marked at, however far the
engine got meanwhile. Picking the finished run shows its figures instead (and the
finished run's rows never leak into the live run's tables).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ROOT, Dashboard, drawn, login, wait_until
from tradelab.dashboard.state import FILLS_SHOWN
from tradelab.store import Store
from tradelab.strategy.base import Signals, Strategy

pytestmark = pytest.mark.slow
T = datetime(2015, 6, 1, 20, tzinfo=UTC)
D = Decimal
TRADING_WITHIN = 120.0  # s: the engine (a thread of this process) commits its first fill
SAMPLES = 3  # distinct bars whose figures are compared while the engine trades

# Panel draws into shadow roots, which document.querySelector does not enter.
DEEP = """const deep = (sel, root = document) => {
  const out = [...root.querySelectorAll(sel)];
  for (const el of root.querySelectorAll('*')) if (el.shadowRoot) out.push(...deep(sel, el.shadowRoot));
  return out;
};
const one = id => deep(`[data-testid='${id}']`)[0];"""
# The tiles and the bar they are marked at, read in one go (the page's JavaScript runs
# between updates, so they belong to one snapshot; tables are drawn a few frames later).
READ_TILES = "() => {" + DEEP + """
  const t = id => one(id)?.textContent ?? null;
  return {equity: t('equity'), cash: t('cash'), drawdown: t('drawdown'), fills: t('fill-count'),
          run: one('run-label')?.getAttribute('data-run'),
          at: one('as-of')?.getAttribute('data-at') ?? null};
}"""
# A bar the page had not shown yet.
NEW_BAR = "seen => {" + DEEP + """
  const e = one('as-of');
  return e && !seen.includes(e.getAttribute('data-at'));
}"""


def _seed_finished_run(store: Store) -> int:
    """A finished run on ``paper``: bought 10 SPX at 100, sold at 110 (fees 1 each)."""
    with store.transaction() as tx:
        tx.ensure_account("paper", D("100000"))
        run = tx.start_run("paper", "sma_cross", symbol="SPX", source="sample", mode="paper",
                           started_at=T, params={})
        for n, (side, price) in enumerate((("buy", "100"), ("sell", "110"))):
            at = T + timedelta(days=n)
            tx.upsert_order(f"seed-{n}", at=at, account="paper", run_id=run, symbol="SPX",
                            side=side, type="market", quantity=D("10"), status="filled",
                            filled_quantity=D("10"), avg_fill_price=D(price))
            tx.add_fill(f"seed-f{n}", f"seed-{n}", "SPX", side, D("10"), D(price), D("1"), at)
        tx.set_position("paper", "SPX", D("0"), D("0"), D("100"))
        tx.set_cash("paper", D("100098"))
        tx.add_equity_snapshot("paper", T + timedelta(days=1), D("100098"), D("0"),
                               D("100098"), D("0"), run_id=run)
        tx.finish_run(run, "finished", {}, finished_at=T + timedelta(days=1))
    return run


@pytest.fixture()
def finished(dashboard: Dashboard) -> int:
    """The seeded finished run's id (seeded before the engine opens its own run)."""
    with Store(dashboard.store_url) as store:
        return _seed_finished_run(store)


@pytest.fixture()
def engine(dashboard: Dashboard, finished: int) -> Iterator[Any]:
    """A paper replay at 10 bars/s writing each bar's rows as it goes (started by the test).

    Building it opens its run (``running``) on the account, next to the finished one.
    """
    import tradelab as tl

    settings = tl.load_config(environ=dashboard.environ)
    eng = tl.build(settings).engine("sma_cross", "SPX", source="sample",
                                    params={"fast": 3, "slow": 8}, start="2016-01-01",
                                    end="2016-12-31", speed=10.0, flush_every=1)
    thread = threading.Thread(target=eng.run, name="engine", daemon=True)
    yield thread
    eng.request_stop("test over")
    if thread.ident is not None:
        thread.join(60)
        assert not thread.is_alive()


def _money(v: Decimal, currency: str = "") -> str:
    return f"{float(v):,.2f}{' ' + currency if currency else ''}"


def test_tiles_follow_the_running_run_and_agree_with_the_store(
        dashboard: Dashboard, browser: Any, finished: int, engine: threading.Thread,
        tmp_path: Any) -> None:
    store = Store(dashboard.store_url)
    page = None
    try:
        page = login(browser, dashboard.url, "trader")
        engine.start()

        def live_run_traded() -> bool:
            running = [r for r in store.runs("paper") if r.status == "running"]
            return bool(running) and bool(store.fills("paper", running[-1].id))

        wait_until(live_run_traded, "the engine's first fill", TRADING_WITHIN)
        live = next(r.id for r in store.runs("paper") if r.status == "running")
        expect(page.get_by_test_id("run-label")).to_have_attribute("data-run", str(live))

        expect(page.get_by_test_id("fill-count")).not_to_have_text("0")
        page.get_by_text("Recent fills (selected run)").scroll_into_view_if_needed()
        seen: set[str] = set()
        while len(seen) < SAMPLES and engine.is_alive():
            # The next bar the page shows (a new as-of), then its figures against the store.
            page.wait_for_function(NEW_BAR, arg=sorted(seen), polling=100)
            tiles = page.evaluate(READ_TILES)
            if tiles["run"] != str(live) or tiles["at"] is None:
                continue
            at = datetime.fromisoformat(tiles["at"])
            point = next(p for p in store.equity_curve("paper", live) if p.at == at)
            fills = [f for f in store.fills("paper", live) if f.at <= at]
            assert tiles["equity"] == _money(point.equity, "USD")
            assert tiles["cash"] == _money(point.cash)
            assert tiles["drawdown"] == f"{float(point.drawdown):.2%}"
            assert tiles["fills"] == str(len(fills))
            seen.add(tiles["at"])
        assert len(seen) == SAMPLES, "the engine finished before the page showed enough bars"
        # Recent fills: this run's only (the finished run's two are not mixed in).
        cells = page.get_by_test_id("fills-table").locator("td[data-field='run']")
        expect(cells.first).to_have_text(str(live))
        expect(cells.filter(has_not_text=str(live))).to_have_count(0)
        expect(page.get_by_text(store.fills("paper", live)[0].fill_id, exact=True)).to_be_visible()

        # The replay's end: the page settles on the run's final rows.
        engine.join(TRADING_WITHIN)
        assert not engine.is_alive()
        last = store.equity_curve("paper", live)[-1]
        fills = store.fills("paper", live)
        expect(page.get_by_test_id("as-of")).to_have_attribute("data-at", last.at.isoformat())
        expect(page.get_by_test_id("equity")).to_have_text(_money(last.equity, "USD"))
        expect(page.get_by_test_id("cash")).to_have_text(_money(last.cash))
        expect(page.get_by_test_id("fill-count")).to_have_text(str(len(fills)))
        expect(page.get_by_test_id("last-fill")).to_have_attribute("data-fill-id",
                                                                    fills[-1].fill_id)
        # Newest first, at most FILLS_SHOWN of them.
        ids = page.get_by_test_id("fills-table").locator("td[data-field='fill_id']")
        expect(ids.first).to_have_text(fills[-1].fill_id)
        expect(ids).to_have_count(min(len(fills), FILLS_SHOWN))
        expect(cells.filter(has_not_text=str(live))).to_have_count(0)

        # Pick the finished run: its own figures, from its own rows.
        page.locator("select").filter(has_text="live run (auto)").select_option(
            label=next(o for o in _options(page) if o.startswith(f"run {finished} ")))
        expect(page.get_by_test_id("run-label")).to_have_attribute("data-run", str(finished))
        expect(page.get_by_test_id("equity")).to_have_text("100,098.00 USD")
        expect(page.get_by_test_id("realized")).to_have_text("100.00")
        expect(page.get_by_test_id("fees")).to_have_text("2.00")
        expect(page.get_by_test_id("pnl")).to_contain_text("+98.00")
        expect(page.get_by_test_id("fill-count")).to_have_text("2")
        expect(cells).to_have_count(2)
        expect(cells.filter(has_not_text=str(finished))).to_have_count(0)
        expect(page.get_by_text("Account (all runs)")).to_be_visible()
        expect(page.locator("canvas").first).to_be_visible()
        drawn(page)
        shot = tmp_path / "dashboard-runs.png"
        page.screenshot(path=str(shot), full_page=True)
        keep = ROOT / "var" / "screenshots"
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, keep / "dashboard-runs.png")
    finally:
        if page is not None:
            page.context.close()
        store.close()


def _options(page: Any) -> list[str]:
    return list(page.locator("select").filter(has_text="live run (auto)").locator(
        "option").all_text_contents())


class _Hold(Strategy):
    """Buys at the first bar and never sells: only the flatten can close its position.

    (A strategy that exits on its own could close the position between the test's
    read and the click, leaving the flatten nothing to do.)
    """

    name = "hold"
    description = "buy and hold"

    def signals(self, bars: pd.DataFrame) -> Signals:
        return Signals(pd.Series(True, index=bars.index), pd.Series(False, index=bars.index))


@pytest.fixture()
def holder(dashboard: Dashboard) -> Iterator[Any]:
    """A slower replay on account ``flat`` whose position the test flattens."""
    import tradelab as tl

    settings = tl.load_config(environ=dashboard.environ)
    eng = tl.build(settings).engine(_Hold(), "SPX", source="sample", start="2010-01-01",
                                    end="2018-12-31", speed=4.0, flush_every=1, account="flat")
    thread = threading.Thread(target=eng.run, name="engine-flat", daemon=True)
    yield eng, thread
    eng.request_stop("test over")
    if thread.ident is not None:
        thread.join(60)
        assert not thread.is_alive()


def test_a_trader_flattens_the_account_after_confirming(
        dashboard: Dashboard, browser: Any, holder: tuple[Any, threading.Thread],
        tmp_path: Any) -> None:
    from tradelab.orders.model import client_order_id
    from tradelab.risk.manager import FLATTEN, FLATTEN_MARK

    eng, thread = holder
    store = Store(dashboard.store_url)
    page = login(browser, dashboard.url, "trader")
    try:
        thread.start()
        wait_until(lambda: bool(store.positions("flat", include_flat=False)),
                   "the engine's first position", TRADING_WITHIN)
        page.locator("select").filter(has_text="paper").first.select_option(label="flat")
        expect(page.get_by_test_id("run-label")).to_have_attribute("data-run", str(eng.run_id))
        page.get_by_role("button", name="Flatten all positions…").click()
        confirm = page.get_by_role("button", name="Confirm flatten")
        expect(confirm).to_be_visible()
        assert store.kill_switch("flat").engaged is False  # nothing happens before confirming
        held = {p.symbol for p in store.positions("flat", include_flat=False)}
        assert held == {"SPX"}
        confirm.click()
        expect(page.get_by_test_id("kill-switch")).to_have_attribute("data-state", "halted")
        ks = store.kill_switch("flat")
        assert ks.engaged and ks.by == "trader" and ks.reason.startswith(FLATTEN_MARK)
        expect(page.get_by_role("button", name="Flatten all positions…")).to_be_disabled()
        # The engine closes what it holds at its next bar; the page shows the account flat.
        wait_until(lambda: not store.positions("flat", include_flat=False),
                   "the account flat", TRADING_WITHIN)
        expect(page.get_by_test_id("account-positions")).to_have_text("0")
        expect(page.get_by_test_id("unrealized")).to_have_text("0.00")
        bars = {p.at for p in store.equity_curve("flat", int(eng.run_id))}
        closing = {client_order_id(str(eng.run_id), FLATTEN, sym, t, "sell")
                   for sym in held for t in bars}
        flat_fills = [f for f in store.fills("flat", int(eng.run_id))
                      if f.client_order_id in closing]
        assert flat_fills, "no flatten order was filled"
        expect(page.get_by_test_id("last-fill")).to_have_attribute(
            "data-fill-id", flat_fills[-1].fill_id)
        drawn(page)
        page.screenshot(path=str(tmp_path / "flatten.png"), full_page=True)
        keep = ROOT / "var" / "screenshots"
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "flatten.png", keep / "dashboard-flatten.png")
    finally:
        page.context.close()
        store.close()
