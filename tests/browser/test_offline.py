"""Works offline: no page the project serves or writes loads anything from a non-loopback host.

Each surface is opened in Chromium with every request routed through a guard
that lets loopback (``127.0.0.1``, ``localhost``, ``[::1]``) and local schemes
(``file:``, ``data:``, ``blob:``) through and aborts and records the rest, as
an offline trading machine would fail them. A test fails listing the recorded
URLs, and also unless the page actually rendered (an asset that silently
failed would otherwise pass):

- the API's ``/docs`` (Swagger UI) and ``/redoc`` from a real uvicorn server;
- an HTML backtest report (``write_report``) opened from ``file://``;
- a shipped notebook (``notebooks/02_paper_trading.ipynb``) executed and
  exported as the job runner archives it (``notebook_html``);
- the dashboard, its login page and the page after login.

Screenshots are kept in ``var/screenshots/offline-*.png``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    ROOT,
    UI_TIMEOUT,
    Dashboard,
    drawn,
    login_in,
    new_page,
    open_section,
)

pytestmark = pytest.mark.slow

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
LOCAL_SCHEMES = frozenset({"file", "data", "blob", "about", "chrome-error"})
NOTEBOOK = ROOT / "notebooks" / "02_paper_trading.ipynb"
EXECUTE_WITHIN = 900  # s: the notebook's cells together, on a loaded 2-core machine (idle: ~1 min)


def is_local(url: str) -> bool:
    """Whether fetching ``url`` stays on this machine."""
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or (parts.hostname or "") in LOOPBACK


class Offline:
    """Every request of a browser context: local ones go through, the rest are aborted and recorded.

    Websockets are not routed by ``context.route``; their URLs are recorded from
    the page's ``websocket`` event.
    """

    def __init__(self, context: Any) -> None:
        self.context = context
        self.external: list[str] = []
        self.requests = 0
        context.route("**/*", self._route)

    def _route(self, route: Any) -> None:
        self.requests += 1
        url = route.request.url
        if is_local(url):
            route.continue_()
        else:
            self.external.append(url)
            route.abort("internetdisconnected")

    def page(self) -> Any:
        page = new_page(self.context)
        page.on("websocket", lambda ws: None if is_local(ws.url) else self.external.append(ws.url))
        return page

    def check(self) -> None:
        assert self.requests > 0, "the guard saw no request: is the route installed?"
        assert not self.external, "requests to non-loopback hosts:\n" + "\n".join(
            sorted(set(self.external)))


@pytest.fixture()
def offline(browser: Any) -> Iterator[Offline]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield Offline(context)
    finally:
        context.close()


def keep(page: Any, tmp_path: Path, name: str) -> None:
    """Screenshot the page into the test's folder and keep a copy under ``var/screenshots``."""
    drawn(page)
    shot = tmp_path / f"offline-{name}.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 5_000
    folder = ROOT / "var" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, folder / shot.name)


def a_bokeh_plot_is_drawn(page: Any) -> None:
    """A Bokeh plot rendered: its canvas is laid out with a size (Bokeh JS ran)."""
    canvas = page.locator("canvas").first
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 100, box


def test_the_guard_records_and_blocks_a_non_loopback_request(offline: Offline,
                                                             tmp_path: Path) -> None:
    """The guard is not vacuous: a page naming a remote image fails the check (nothing is sent)."""
    page_file = tmp_path / "remote.html"
    page_file.write_text('<h1>remote</h1><img id="remote" src="https://cdn.example.invalid/x.png">'
                         '<img id="local" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">')
    page = offline.page()
    with page.expect_event("requestfailed", lambda r: "example.invalid" in r.url):
        page.goto(page_file.as_uri())
    assert offline.external == ["https://cdn.example.invalid/x.png"]
    with pytest.raises(AssertionError, match=r"cdn\.example\.invalid"):
        offline.check()
    offline.external.clear()


def test_api_docs_load_only_local_assets(offline: Offline, tmp_path: Path) -> None:
    from tests.integration.api_proc import serve

    with serve(f"sqlite:///{tmp_path / 'api.db'}", tmp_path / "api.log", timeout=UI_TIMEOUT) as api:
        page = offline.page()
        page.goto(f"{api.url}/docs")
        # Swagger UI built the operations list from /openapi.json: its JS and CSS ran.
        expect(page.locator(".opblock").first).to_be_visible()
        assert page.locator(".opblock").count() > 10
        expect(page.locator(".opblock-summary-path", has_text="/auth/login")).to_be_visible()
        keep(page, tmp_path, "api-docs")
        page.goto(f"{api.url}/redoc")
        expect(page.locator(".menu-content")).to_be_visible()
        expect(page.get_by_role("heading", name="tradelab API", exact=False).first).to_be_visible()
        assert page.locator("label.-depth2").count() > 10  # one entry per operation
        keep(page, tmp_path, "api-redoc")
    offline.check()


def test_html_report_loads_nothing_from_the_network(offline: Offline, spx: Any, registry: Any,
                                                     tmp_path: Path) -> None:
    from tradelab.research.backtest import backtest
    from tradelab.research.report import write_report
    from tradelab.research.sweep import sweep

    bars = spx.iloc[-500:]
    result = backtest(registry.create("sma_cross", fast=5, slow=20), bars)
    swept = sweep(registry.get("sma_cross"), bars, {"fast": [5, 10], "slow": [20, 30]},
                  progress=False)
    path = write_report([result, swept], tmp_path / "report.html", title="offline report")
    page = offline.page()
    page.goto(path.as_uri())
    expect(page.get_by_role("heading", name="offline report")).to_be_visible()
    a_bokeh_plot_is_drawn(page)
    assert page.locator("canvas").count() >= 2  # the backtest's plots and the sweep's heatmap
    keep(page, tmp_path, "report")
    offline.check()


@pytest.fixture(scope="module")
def exported_notebook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``notebooks/02_paper_trading.ipynb`` executed and exported as a job run archives it."""
    import nbformat
    from nbclient import NotebookClient

    from tradelab.jobs.report import notebook_html

    tmp = tmp_path_factory.mktemp("notebook")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=EXECUTE_WITHIN, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    executed = tmp / NOTEBOOK.name
    nbformat.write(nb, executed)
    out = tmp / "output.html"
    out.write_text(notebook_html(executed), encoding="utf-8")
    return out


def test_notebook_export_renders_its_plot_offline(offline: Offline, exported_notebook: Path,
                                                  tmp_path: Path) -> None:
    page = offline.page()
    page.goto(exported_notebook.as_uri())
    expect(page.get_by_role("heading", name="Paper trading with tradelab")).to_be_visible()
    a_bokeh_plot_is_drawn(page)  # the hvplot equity curve: Bokeh JS came inline
    page.locator("canvas").first.scroll_into_view_if_needed()
    keep(page, tmp_path, "notebook")
    offline.check()


def test_dashboard_loads_only_from_its_server(offline: Offline, dashboard: Dashboard,
                                              tmp_path: Path) -> None:
    page = offline.page()
    page.goto(dashboard.url)
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    keep(page, tmp_path, "dashboard-login")
    page.close()
    page = login_in(offline.context, dashboard.url, "trader")
    expect(page.get_by_test_id("role")).to_have_text("trader")
    expect(page.get_by_test_id("fill-count")).to_be_visible()
    expect(page.get_by_role("button", name="Engage kill switch")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    a_bokeh_plot_is_drawn(page)  # the equity curve: Bokeh JS from the server itself
    expect(page.get_by_test_id("fills-table")).to_be_visible()
    open_section(page, "Engine runs (account)")  # a Tabulator: the tables' extension JS too
    expect(page.locator(".tabulator").first).to_be_visible()
    keep(page, tmp_path, "dashboard")
    offline.check()
