"""Browser-test harness: a real dashboard server on a fresh store, and headless Chromium.

Debian's Chromium (``/usr/bin/chromium``, installed by ``.ci/system-deps``) is
driven by Playwright's Python package; Playwright's own browser downloads are
never used. A missing browser is a failure, not a skip.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.unit.api.helpers import FAST, PASSWORDS, SECRET, auth_settings

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("TRADELAB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
CLI = "import tradelab.cli.dashboard_cmd; from tradelab.cli import app; app()"


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


def _wait_http(url: str, proc: subprocess.Popen[Any], log: Path, timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dashboard server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"dashboard server not answering at {url} after {timeout} s:\n{log.read_text()}")


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
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-c", CLI, "dashboard", "--host", "127.0.0.1",
                                 "--port", str(port), "--url", store_url, "--no-jobs",
                                 "--poll-ms", "250"],
                                cwd=ROOT, env=environ, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_http(url, proc, log)
        yield Dashboard(url, store_url, environ, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


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


def login(browser: Any, url: str, user: str) -> Any:
    """A new browser session (context) logged in as ``user``, on the live dashboard."""
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    return login_in(context, url, user)


def login_in(context: Any, url: str, user: str) -> Any:
    """A new page of ``context`` logged in as ``user`` through the form.

    A login over the websocket sends the page to ``/session?ticket=...``, which sets
    the login cookie and redirects back: the returned page is the reloaded one.
    """
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(url)
    page.get_by_placeholder("user name").fill(user)
    page.get_by_placeholder("password").fill(PASSWORDS[user])
    with page.expect_navigation(url=url):
        page.get_by_role("button", name="Log in").click()
    page.get_by_test_id("role").wait_for()
    return page
