"""The dashboard's per-run views in a real browser: daily P&L, price chart, per-symbol
performance and feed health, each agreeing with the store for the selected run.

Runs are seeded straight into the store (finished runs, a running one whose last
bar is old); the page is switched between them with the run selector.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import insert

from tests.browser.conftest import Dashboard, keep_screenshot, login, open_section, seed_run
from tradelab.store import Store
from tradelab.store.bar_sql import RB
from tradelab.store.run_bars_repo import run_bars

pytestmark = pytest.mark.slow
D = Decimal
ACCOUNT = "views"

# Panel draws into shadow roots, which document.querySelector does not enter.
DEEP = """const deep = (sel, root = document) => {
  const out = [...root.querySelectorAll(sel)];
  for (const el of root.querySelectorAll('*')) if (el.shadowRoot) out.push(...deep(sel, el.shadowRoot));
  return out;
};"""
ONE = "const one = id => deep(`[data-testid='${id}']`)[0];"
# The data BokehJS holds for the renderers named ``name`` (what the canvas draws).
SOURCE = "name => {" + """
  for (const doc of Bokeh.documents) for (const m of doc._all_models.values())
    if (m.name === name && m.data_source) return m.data_source.data;
  return null;
}"""
# The days the daily P&L chart draws: the left edges of its bars' data source, as
# BokehJS holds it (what the canvas shows), found by the plot's title.
DAILY_DAYS = """title => {
  const out = [];
  for (const doc of Bokeh.documents) for (const m of doc._all_models.values()) {
    if (m.type !== 'Figure' && m.type !== 'Plot') continue;
    if (!m.title || m.title.text !== title) continue;
    for (const r of m.renderers) {
      if (!r.data_source || !r.glyph || r.glyph.type !== 'Quad') continue;
      for (const v of r.data_source.data.left) out.push(new Date(v).toISOString().slice(0, 10));
    }
  }
  return out.sort();
}"""


def pick_run(page: Any, run: int) -> None:
    select = page.locator("select").filter(has_text="live run (auto)")
    option = select.locator("option", has_text=f"run {run} · ")
    expect(option).to_have_count(1)  # the options follow the account picked
    select.select_option(label=option.text_content())
    expect(page.get_by_test_id("run-label")).to_have_attribute("data-run", str(run))


def _switch_and_read_days(page: Any, run: int, title: str) -> list[str]:
    """Pick ``run`` and return the daily chart's days as soon as the page says it shows
    that run (read in the same JavaScript turn as the run label: what a reader sees)."""
    select = page.locator("select").filter(has_text="live run (auto)")
    option = select.locator("option", has_text=f"run {run} · ")
    expect(option).to_have_count(1)
    select.select_option(label=option.text_content())
    script = ("([run, title]) => {" + DEEP + ONE + f"const days = {DAILY_DAYS};"
              "const el = one('run-label');"
              "return el && el.getAttribute('data-run') === String(run) ? days(title) : false; }")
    return list(page.wait_for_function(script, arg=[run, title], polling="raf").json_value())


def test_daily_pnl_shows_only_the_selected_runs_days(dashboard: Dashboard, browser: Any,
                                                     tmp_path: Any) -> None:
    store = Store(dashboard.store_url)
    # Many days (as a live run accumulates), then a run of one day and one of none.
    first = seed_run(store, ACCOUNT, datetime(2015, 1, 1, 20, tzinfo=UTC),
                     [100.0 + (n * 7) % 11 for n in range(150)], sell=149)
    second = seed_run(store, ACCOUNT, datetime(2015, 9, 14, 20, tzinfo=UTC), [50.0, 52.0])
    empty = seed_run(store, ACCOUNT, datetime(2015, 10, 1, 20, tzinfo=UTC), [])
    page = login(browser, dashboard.url, "trader")
    try:
        page.locator("select").filter(has_text="paper").first.select_option(label=ACCOUNT)
        expected = {run: sorted({p.at.strftime("%Y-%m-%d")
                                 for p in store.equity_curve(ACCOUNT, run)})
                    for run in (first, second, empty)}
        assert len(expected[first]) == 150 and len(expected[second]) == 2
        assert expected[empty] == []
        title = "Daily P&L (UTC days)"
        open_section(page, "Daily P&L (selected run)")
        page.wait_for_function("title => { for (const doc of Bokeh.documents) for (const m of "
                               "doc._all_models.values()) if (m.title && m.title.text === title)"
                               " return true; return false; }", arg=title)
        for run in (first, second, empty, first, second):
            assert _switch_and_read_days(page, run, title) == expected[run]
        keep_screenshot(page, tmp_path, "dashboard-daily-switch.png")
    finally:
        page.context.close()
        store.close()


# The equity chart's data as BokehJS holds it, read in the same JavaScript turn as the
# run label (``false`` until the page says it shows ``run``).
EQUITY_OF = "run => {" + DEEP + ONE + f"const source = {SOURCE};" + """
  const el = one('run-label');
  if (!el || el.getAttribute('data-run') !== String(run)) return false;
  const d = source('equity');
  return {at: Array.from(d.at), equity: Array.from(d.equity)};
}"""


def test_the_equity_chart_follows_a_run_switch(dashboard: Dashboard, browser: Any,
                                              tmp_path: Any) -> None:
    store = Store(dashboard.store_url)
    # A long run, a short one with other values, and one without a snapshot yet.
    long_ = seed_run(store, "equity", datetime(2014, 1, 1, 20, tzinfo=UTC),
                     [100.0 + (n * 13) % 17 for n in range(300)], sell=299)
    short = seed_run(store, "equity", datetime(2014, 11, 3, 20, tzinfo=UTC), [80.0, 95.0, 90.0])
    empty = seed_run(store, "equity", datetime(2014, 12, 1, 20, tzinfo=UTC), [])
    expected = {run: {"at": [p.at.timestamp() * 1000 for p in store.equity_curve("equity", run)],
                      "equity": [float(p.equity) for p in store.equity_curve("equity", run)]}
                for run in (long_, short, empty)}
    assert len(expected[long_]["at"]) == 300 and len(expected[short]["at"]) == 3
    assert expected[empty]["at"] == []
    page = login(browser, dashboard.url, "viewer")
    try:
        page.locator("select").filter(has_text="paper").first.select_option(label="equity")
        select = page.locator("select").filter(has_text="live run (auto)")
        for run in (long_, short, empty, long_, short):
            option = select.locator("option", has_text=f"run {run} · ")
            expect(option).to_have_count(1)
            select.select_option(label=option.text_content())
            shown = page.wait_for_function(EQUITY_OF, arg=run, polling="raf").json_value()
            assert shown == expected[run], f"run {run}"
        keep_screenshot(page, tmp_path, "dashboard-equity-switch.png")
    finally:
        page.context.close()
        store.close()


def _cells(page: Any, table: str, field: str) -> list[str]:
    """The text of one column's cells in the table under the section titled ``table``."""
    section = page.locator(".bk-panel-models-layout-Column", has_text=table).last
    return [c.strip() for c in section.locator(
        f".tabulator-cell[tabulator-field='{field}']").all_text_contents()]


def _number(text: str) -> float:
    return float(text.split(" ")[0].replace(",", "").replace("+", ""))


def _seed_two_symbols(store: Store) -> int:
    """A finished run on ``multi``: SPX bought 10 @100 and sold @110, NDX bought 5 @200
    and held (last bar 210); fees 1 per fill. P&L: SPX 98, NDX 49, run 147."""
    t = datetime(2015, 3, 2, 20, tzinfo=UTC)
    with store.transaction() as tx:
        tx.ensure_account("multi", D("100000"))
        run = tx.start_run("multi", "sma_cross", symbol="SPX,NDX", source="sample",
                           mode="paper", started_at=t, params={"fast": 2, "slow": 3})
        for n, (sym, side, qty, price) in enumerate((("SPX", "buy", "10", "100"),
                                                     ("NDX", "buy", "5", "200"),
                                                     ("SPX", "sell", "10", "110"))):
            at = t + timedelta(days=n + 3)
            tx.upsert_order(f"m-{n}", at=at, account="multi", run_id=run, symbol=sym, side=side,
                            type="market", quantity=D(qty), status="filled",
                            filled_quantity=D(qty), avg_fill_price=D(price))
            tx.add_fill(f"m-f{n}", f"m-{n}", sym, side, D(qty), D(price), D("1"), at)
        last = t + timedelta(days=6)
        tx.add_equity_snapshot("multi", last, D("99097"), D("1050"), D("100147"), D(0),
                               run_id=run)
        tx.set_cash("multi", D("99097"))
        tx.set_position("multi", "NDX", D("5"), D("200"), D(0))
        tx.finish_run(run, "finished", {}, finished_at=last)
    closes = {"SPX": [100.0, 101.0, 99.0, 100.0, 104.0, 110.0, 110.0],
              "NDX": [195.0, 196.0, 198.0, 199.0, 200.0, 205.0, 210.0]}
    with store._write.begin() as conn:
        conn.execute(insert(RB), [
            {"run_id": run, "symbol": sym, "at": t + timedelta(days=n), "open": c - 0.5,
             "high": c + 1, "low": c - 1, "close": c, "volume": 1000.0}
            for sym, cs in closes.items() for n, c in enumerate(cs)])
    return run


def test_price_chart_and_per_symbol_performance_agree_with_the_store(
        dashboard: Dashboard, browser: Any, tmp_path: Any) -> None:
    store = Store(dashboard.store_url)
    run = _seed_two_symbols(store)
    page = login(browser, dashboard.url, "viewer")
    try:
        page.locator("select").filter(has_text="paper").first.select_option(label="multi")
        pick_run(page, run)
        expect(page.get_by_test_id("pnl")).to_contain_text("+147.00")
        # Per symbol: the figures, and their sum is the run's P&L tile.
        title = "Performance per symbol (selected run)"
        open_section(page, title)
        # (the positions table has symbol cells too: wait for this table's own column)
        trips = page.locator(".tabulator-cell[tabulator-field='round_trips']")
        expect(trips).to_have_count(2)
        rows = page.evaluate("() => {" + DEEP + """
          const out = {};
          for (const row of deep('.tabulator-row')) {
            const cell = f => row.querySelector(`[tabulator-field='${f}']`)?.textContent ?? null;
            if (cell('round_trips') === null) continue;
            out[cell('symbol')] = {pnl: cell('pnl'), realized: cell('realized'),
              unrealized: cell('unrealized'), fees: cell('fees'), fills: cell('fills'),
              round_trips: cell('round_trips'), win_rate: cell('win_rate')};
          }
          return out;
        }""")
        assert rows == {
            "NDX": {"pnl": "49.00", "realized": "0.00", "unrealized": "50.00", "fees": "1.00",
                    "fills": "1", "round_trips": "0", "win_rate": "–"},
            "SPX": {"pnl": "98.00", "realized": "100.00", "unrealized": "0.00", "fees": "2.00",
                    "fills": "2", "round_trips": "1", "win_rate": "100%"}}
        tile = _number(page.get_by_test_id("pnl").text_content() or "")
        assert sum(_number(r["pnl"]) for r in rows.values()) == pytest.approx(tile, abs=0.005)
        # Price chart: the run's first symbol, its stored bars, the strategy's averages
        # from the run's params, and the SPX fills as markers at their time and price.
        stored = run_bars(store, run, "SPX")
        open_section(page, "Price, indicators and fills (selected run)")
        page.wait_for_function(f"() => ({SOURCE})('candles') !== null")
        candles = page.evaluate(SOURCE, "candles")
        assert len(candles["close"]) == len(stored)
        assert [round(v, 6) for v in candles["close"]] == [b["close"] for b in stored]
        assert candles["at"][-1] == stored[-1]["at"].timestamp() * 1000
        fast = page.evaluate(SOURCE, "indicator-0")
        slow = page.evaluate(SOURCE, "indicator-1")
        closes = [b["close"] for b in stored]
        assert fast["value"][-1] == pytest.approx(sum(closes[-2:]) / 2)
        assert slow["value"][-1] == pytest.approx(sum(closes[-3:]) / 3)
        legend = page.evaluate("() => { for (const doc of Bokeh.documents) for (const m of "
                               "doc._all_models.values()) if (m.type === 'Legend') return "
                               "m.items.filter(i => i.visible).map(i => i.label.value); }")
        assert legend[:2] == ["SMA(2)", "SMA(3)"]
        spx = [f for f in store.fills("multi", run) if f.symbol == "SPX"]
        buys, sells = page.evaluate(SOURCE, "buys"), page.evaluate(SOURCE, "sells")
        assert buys["price"] == [float(f.price) for f in spx if f.side == "buy"]
        assert sells["price"] == [float(f.price) for f in spx if f.side == "sell"]
        assert buys["at"] == [f.at.timestamp() * 1000 for f in spx if f.side == "buy"]
        keep_screenshot(page, tmp_path, "dashboard-price-performance.png")
    finally:
        page.context.close()
        store.close()


def test_feed_health_flags_a_stale_feed_and_shows_data_quality(
        dashboard: Dashboard, browser: Any, tmp_path: Any) -> None:
    from tradelab.store.quality_repo import QualityRepo

    store = Store(dashboard.store_url)
    # A running run whose last bar is years old, with data-quality outcomes.
    old = seed_run(store, "feeds", datetime(2015, 4, 1, 20, tzinfo=UTC),
                   [100.0, 101.0, 102.0, 103.0], finished=False)
    at = datetime(2015, 4, 2, 21, tzinfo=UTC)
    QualityRepo(store).record([
        {"source": "sample", "symbol": "SPX", "kind": "rejected", "reason": "high_below_low",
         "count": 2, "at": at, "run_id": old},
        {"source": "sample", "symbol": "SPX", "kind": "rejected", "reason": "high_below_low",
         "count": 1, "at": at + timedelta(days=1), "run_id": old},
        {"source": "sample", "symbol": "SPX", "kind": "gap", "reason": "missing_bars",
         "count": 3, "at": at, "run_id": old}])
    page = login(browser, dashboard.url, "viewer")
    try:
        page.locator("select").filter(has_text="paper").first.select_option(label="feeds")
        expect(page.get_by_test_id("run-label")).to_have_attribute("data-run", str(old))
        open_section(page, "Feed health and data quality (selected run)")
        state = page.get_by_test_id("feed-state")
        expect(state).to_have_attribute("data-state", "stale")
        last = max(b["at"] for b in run_bars(store, old))
        expect(page.get_by_test_id("feed-last-bar")).to_have_attribute("data-at",
                                                                       last.isoformat())
        expect(page.get_by_test_id("feed-bars")).to_have_text(str(len(run_bars(store, old))))
        # Daily bars: stale after three intervals (3 days); the bar is years older.
        expect(page.get_by_test_id("feed-threshold")).to_have_attribute(
            "data-seconds", str(3 * 86400))
        age = int(page.get_by_test_id("feed-age").get_attribute("data-seconds") or 0)
        assert age > (datetime.now(UTC) - last).total_seconds() - 600
        expect(page.get_by_test_id("feed-quality")).to_have_text("6")
        reasons = page.locator(".tabulator-cell[tabulator-field='reason']")
        expect(reasons.filter(has_text="high_below_low")).to_have_count(1)
        counts = page.evaluate("() => {" + DEEP + """
          const out = {};
          for (const row of deep('.tabulator-row')) {
            const cell = f => row.querySelector(`[tabulator-field='${f}']`)?.textContent ?? null;
            if (cell('reason') !== null) out[cell('reason')] = cell('count');
          }
          return out;
        }""")
        assert counts == {"high_below_low": "3", "missing_bars": "3"}
        keep_screenshot(page, tmp_path, "dashboard-feed-stale.png")
        # A run whose bars are current (hourly, the last one now): the feed is ok.
        now = datetime.now(UTC).replace(microsecond=0)
        fresh = seed_run(store, "feeds", now - timedelta(hours=3), [], finished=False)
        with store._write.begin() as conn:
            conn.execute(insert(RB), [
                {"run_id": fresh, "symbol": "SPX", "at": now - timedelta(hours=3 - n),
                 "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0}
                for n in range(4)])
        pick_run(page, fresh)
        expect(state).to_have_attribute("data-state", "ok")
        expect(page.get_by_test_id("feed-bars")).to_have_text("4")
        expect(page.get_by_test_id("feed-quality")).to_have_text("0")
    finally:
        page.context.close()
        store.close()



# The page's Tabulator models and plot titles, as BokehJS holds them.
MODELS = """() => {
  const tables = [], plots = [];
  for (const doc of Bokeh.documents) for (const m of doc._all_models.values()) {
    if (String(m.type).endsWith('DataTabulator')) tables.push(m.columns.map(c => c.field).join(','));
    if ((m.type === 'Figure' || m.type === 'Plot') && m.title) plots.push(m.title.text);
  }
  return {tables: tables.sort(), plots: plots.sort()};
}"""


def test_the_first_page_builds_a_closed_section_only_when_opened(
        dashboard: Dashboard, browser: Any) -> None:
    store = Store(dashboard.store_url)
    run = seed_run(store, "lazy", datetime(2016, 2, 1, 20, tzinfo=UTC), [10.0, 11.0, 12.0])
    page = login(browser, dashboard.url, "viewer")
    try:
        page.locator("select").filter(has_text="paper").first.select_option(label="lazy")
        expect(page.get_by_test_id("run-label")).to_have_attribute("data-run", str(run))
        first = page.evaluate(MODELS)
        assert first["plots"] == ["Equity (selected run)"]
        assert first["tables"] == []  # positions and fills are plain HTML tables
        expect(page.get_by_test_id("fills-table")).to_be_visible()
        open_section(page, "Engine runs (account)")
        ids = page.locator(".tabulator-cell[tabulator-field='id']")
        expect(ids).to_have_count(1)
        expect(ids.first).to_have_text(str(run))
        expect(page.locator(".tabulator-cell[tabulator-field='strategy']")).to_have_text(
            "sma_cross")
        assert page.evaluate(MODELS)["tables"] == [
            "id,strategy,symbol,mode,status,started_at,last_bar"]
        assert page.evaluate(MODELS)["plots"] == ["Equity (selected run)"]
    finally:
        page.context.close()
        store.close()
