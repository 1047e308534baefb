"""Browser-test harness: a real dashboard server on a fresh store, and headless Chromium.

Debian's Chromium (``/usr/bin/chromium``, installed by ``.ci/system-deps``) is
driven by Playwright's Python package; Playwright's own browser downloads are
never used. A missing browser is a failure, not a skip.

The tests must pass on a busy machine (CI is a developer's machine, maybe
running other work): they wait for events, each bounded generously. The
server says when it answers (its URL on the ``--ready-fd`` pipe, end-of-file
if it dies first); pages are awaited with Playwright's auto-waiting, bounded
by :data:`UI_TIMEOUT`.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import expect

from tests.unit.api.helpers import FAST, PASSWORDS, SECRET, auth_settings
from tradelab.dashboard.sessions import COOKIE
from tradelab.testing import stop_process

if TYPE_CHECKING:
    from tradelab.store import Store

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("TRADELAB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
CLI = "import tradelab.cli.dashboard_cmd; from tradelab.cli import app; app()"
# Bounds, not expectations: an idle machine takes a small fraction of each (the dashboard
# is ready in about 3 s, a page in well under one), a loaded 2-core one several times more.
D = Decimal
READY_WITHIN = 120.0  # s: process start → the server answers
UI_TIMEOUT = 60.0  # s: any one step in the browser (a page, an element, a state)

expect.set_options(timeout=UI_TIMEOUT * 1000)


@dataclass
class Dashboard:
    url: str
    store_url: str
    environ: dict[str, str]
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _await_ready(read_fd: int, proc: subprocess.Popen[Any], log: Path) -> str:
    """The URL the server writes on its ready pipe once it answers.

    Blocks on the pipe: no polling. End-of-file means the server died before it was
    ready (its end of the pipe closed with it).
    """
    data = b""
    deadline = time.monotonic() + READY_WITHIN
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([read_fd], [], [], left)[0]:
            pytest.fail(f"dashboard server not ready after {READY_WITHIN:g} s:\n{log.read_text()}")
        chunk = os.read(read_fd, 4096)
        if not chunk:
            proc.wait(30)
            pytest.fail(f"dashboard server exited with {proc.returncode}:\n{log.read_text()}")
        data += chunk
    return data.decode().strip()


def health(dashboard: Dashboard) -> dict[str, Any]:
    """The server's ``GET /health``: ``{"status": "ok", "sessions": <open Bokeh sessions>}``."""
    with urllib.request.urlopen(dashboard.url + "health", timeout=UI_TIMEOUT) as r:
        return dict(json.loads(r.read()))


def wait_until(condition: Callable[[], bool], what: str, timeout: float = UI_TIMEOUT) -> None:
    """Re-check a condition of the server or the store (no event to wait on) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:g} s")
        time.sleep(0.1)  # the re-check period, not a wait for something to happen


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """``tradelab dashboard`` in a subprocess on a fresh SQLite store with three users."""
    from tradelab.auth import AuthService
    from tradelab.store import Store

    tmp = tmp_path_factory.mktemp("dashboard")
    store_url = f"sqlite:///{tmp / 'dashboard.db'}"
    store = Store(store_url)
    store.upgrade()
    auth = AuthService(store, auth_settings(), secret=SECRET)
    for name in ("trader", "viewer"):
        auth.add_user(name, PASSWORDS[name], name, actor="test")
    store.close()
    port = _free_port()
    environ = {**os.environ, "TRADELAB_HOME": str(ROOT), "TRADELAB__AUTH__JWT_SECRET": SECRET,
               "TRADELAB__CACHE__DIR": str(tmp / "cache"), "TRADELAB__STORE__URL": store_url,
               **{f"TRADELAB__AUTH__{k.upper()}": str(v) for k, v in FAST.items()}}
    log = tmp / "server.log"
    read_fd, write_fd = os.pipe()
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-c", CLI, "dashboard", "--host", "127.0.0.1",
                                 "--port", str(port), "--url", store_url, "--no-jobs",
                                 "--poll-ms", "250", "--ready-fd", str(write_fd)],
                                cwd=ROOT, env=environ, stdout=out, stderr=subprocess.STDOUT,
                                pass_fds=(write_fd,))
    os.close(write_fd)  # the server holds the only write end: its exit means end-of-file
    try:
        url = _await_ready(read_fd, proc, log)
        assert url == f"http://127.0.0.1:{port}/"
        yield Dashboard(url, store_url, environ, log)
    finally:
        os.close(read_fd)
        stop_process(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (bash .ci/system-deps)",
                    pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def drawn(page: Any) -> None:
    """Return once the browser has drawn what it received (two animation frames later)."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def new_page(context: Any) -> Any:
    """A page of ``context`` whose actions and navigations wait up to :data:`UI_TIMEOUT`."""
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT * 1000)
    return page


def login(browser: Any, url: str, user: str) -> Any:
    """A new browser session (context) logged in as ``user``, on the live dashboard."""
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    return login_in(context, url, user)


def login_in(context: Any, url: str, user: str) -> Any:
    """A new page of ``context`` logged in as ``user`` through the form.

    A login over the websocket makes the page fetch ``/session?ticket=...``, which sets
    the login cookie, and shows the dashboard in place: returned once both happened.
    """
    page = new_page(context)
    page.goto(url)
    page.get_by_placeholder("user name").fill(user)
    page.get_by_placeholder("password").fill(PASSWORDS[user])
    had = {c["value"] for c in context.cookies() if c["name"] == COOKIE}
    page.get_by_role("button", name="Log in").click()
    # The response event of a fetch whose redirect is not followed is not reported under
    # request routing (the offline test); the cookie it sets is the event to wait for.
    wait_until(lambda: any(c["name"] == COOKIE and c["value"] not in had
                           for c in context.cookies()), "the login cookie set")
    page.get_by_test_id("role").wait_for()
    return page


def open_section(page: Any, title: str) -> None:
    """Open the dashboard's closed section ``title`` (a click on its header, as a user does):
    its content is built then, on the server."""
    header = page.get_by_role("button", name=title, exact=True)
    header.scroll_into_view_if_needed()
    header.click()


def keep_screenshot(page: Any, tmp_path: Any, name: str) -> None:
    """A full-page screenshot once drawn, kept in ``var/screenshots`` (a test artefact)."""
    drawn(page)
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    keep = ROOT / "var" / "screenshots"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, keep / name)


def seed_run(store: Store, account: str, start: datetime, closes: list[float], *,
             symbol: str = "SPX", buy: int = 0, sell: int | None = None, qty: str = "10",
             finished: bool = True, strategy: str = "sma_cross",
             params: dict[str, Any] | None = None) -> int:
    """A run with one daily bar per close, a snapshot per bar, a buy (and maybe a sell).

    Fees are 1 per fill; cash starts at 100000 on a fresh account.
    """
    with store.transaction() as tx:
        tx.ensure_account(account, D("100000"))
        run = tx.start_run(account, strategy, symbol=symbol, source="sample", mode="paper",
                           started_at=start, params=params or {"fast": 2, "slow": 3})
    cash, held = D("100000"), D(0)
    with store.transaction() as tx:
        acct = tx.lock_account(account)
        cash = D(acct.cash)
        for n, close in enumerate(closes):
            at = start + timedelta(days=n)
            for side, when in (("buy", buy), ("sell", sell)):
                if when != n:
                    continue
                cid = f"r{run}-{side}-{n}"
                price = D(str(close))
                tx.upsert_order(cid, at=at, account=account, run_id=run, symbol=symbol,
                                side=side, type="market", quantity=D(qty), status="filled",
                                filled_quantity=D(qty), avg_fill_price=price)
                tx.add_fill(f"{cid}-f", cid, symbol, side, D(qty), price, D("1"), at)
                sign = 1 if side == "buy" else -1
                cash -= sign * D(qty) * price + D("1")
                held += sign * D(qty)
            value = held * D(str(close))
            tx.add_equity_snapshot(account, at, cash, value, cash + value, D(0), run_id=run)
        tx.set_cash(account, cash)
        tx.set_position(account, symbol, held, D(0), D(0))
        if finished:
            tx.finish_run(run, "finished", {}, finished_at=start + timedelta(days=len(closes)))
        elif closes:
            tx.set_run_progress(run, start + timedelta(days=len(closes) - 1))
    if not closes:
        return run
    from sqlalchemy import insert

    from tradelab.store.bar_sql import RB

    with store._write.begin() as conn:
        conn.execute(insert(RB), [
            {"run_id": run, "symbol": symbol, "at": start + timedelta(days=n), "open": c,
             "high": c + 1, "low": c - 1, "close": c, "volume": 1000.0}
            for n, c in enumerate(closes)])
    return run
