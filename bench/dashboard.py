"""Dashboard start-up: process start → ready (answering) → first page rendered after login.

Run: ``.venv/bin/python bench/dashboard.py [--runs 5] [--jobs]``. Prints the median (and the
range) over the runs. Needs Debian's Chromium at ``/usr/bin/chromium`` (or
``TRADELAB_CHROMIUM``), driven by Playwright's Python package.

What is measured
----------------
* A real ``tradelab dashboard`` in a subprocess on 127.0.0.1, over a SQLite store
  (WAL) seeded with one account: an engine run with a year of daily equity
  snapshots, 100 fills and a few positions; one trader user with the default
  (argon2) password hashing. The project's own config and strategies are used
  (``TRADELAB_HOME`` is this checkout); job triggering is off unless ``--jobs``.
* **ready**: from just before ``Popen`` until the server writes its URL on the
  ``--ready-fd`` pipe, which it does from its IO loop once it answers requests;
  **answering** adds one ``GET /health`` round trip after that (the proof).
  **CPU at ready** is the server's user + system time by then (``/proc``): what
  start-up costs regardless of how busy the machine is.
* **login form**: until Chromium (started before the clock, one new browser
  context per run) shows the login form of ``GET /``.
* **dashboard**: until the first page after logging in through the form is
  rendered (in place: the page fetched ``/session?ticket=...`` for its cookie), and the
  role badge, the fill count and the equity chart's canvas are visible.
  **login → dashboard** is the part of that after the click, and **server CPU
  login → dashboard** the server's CPU time over it. The bench types
  and clicks at once: the server's import of the views (pandas, Bokeh's
  plotting), which it starts in a thread once it answers, may then still be
  under way and count here; a person typing a password hides it.
  The first page after the login holds the first screen only (tiles, equity
  curve, positions, orders, fills, controls); the other sections are closed
  cards built when opened, which the bench does not do.
* **document build** (in this process, after the browser runs): the CPU time to
  build one logged-in session's page as the server does after the login
  (``DashboardApp`` resumed, its Bokeh models created and serialized), the
  views' imports done. CPU time: it does not stretch on a busy machine.
* Every run is a new server process (a cold start as far as Python goes; the
  OS file cache is warm after the first). The load average is printed: on a
  busy machine the wall times stretch, the CPU time does not.
"""

from __future__ import annotations

import argparse
import os
import secrets
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tradelab.testing import cpu_seconds, stop_process

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHROMIUM = os.environ.get("TRADELAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LAUNCH = "import tradelab.cli.dashboard_cmd; from tradelab.cli import app; app()"
USER, PASSWORD = "bench", "bench-passphrase-0123"
TIMEOUT = 120.0  # s: a bound for each step, generous for a busy machine


def seed(url: str, secret: str) -> None:
    """One account with a run, a year of equity, 100 fills, positions; a trader user."""
    from tradelab.auth import AuthService, AuthSettings
    from tradelab.store import Store

    store = Store(url)
    store.upgrade()
    t0 = datetime(2024, 1, 2, 21, tzinfo=UTC)
    with store.transaction() as tx:
        tx.ensure_account("paper", Decimal("100000"))
        run = tx.start_run("paper", "sma_cross", symbol="SPX", source="sample", mode="paper",
                           started_at=t0, params={"fast": 10, "slow": 30})
        for day in range(252):
            equity = Decimal(100000 + 40 * day - (day % 17) * 90)
            tx.add_equity_snapshot("paper", t0 + timedelta(days=day), equity - 5000,
                                   Decimal(5000), equity, Decimal("0.01"), run_id=run)
        for i in range(100):
            side = "buy" if i % 2 == 0 else "sell"
            at = t0 + timedelta(days=2 * i)
            tx.upsert_order(f"c-{i}", at=at, account="paper", run_id=run, symbol="SPX",
                            side=side, type="market", quantity=Decimal(1), status="filled",
                            filled_quantity=Decimal(1), avg_fill_price=Decimal("4700.5"))
            tx.add_fill(f"f-{i}", f"c-{i}", "SPX", side, Decimal(1), Decimal("4700.5"),
                        Decimal("1.25"), at)
        for n, symbol in enumerate(("SPX", "NDX", "RUT")):
            tx.set_position("paper", symbol, Decimal(n + 1), Decimal("4700.5"), Decimal(0))
    AuthService(store, AuthSettings(), secret=secret).add_user(USER, PASSWORD, "trader",
                                                              actor="bench")
    store.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def await_ready(read_fd: int, proc: subprocess.Popen[Any], log: Path) -> str:
    """The URL the server writes on its ready pipe (it closes the pipe when it dies)."""
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([read_fd], [], [], left)[0]:
            raise RuntimeError(f"not ready after {TIMEOUT:g} s:\n{log.read_text()}")
        chunk = os.read(read_fd, 4096)
        if not chunk:
            proc.wait(TIMEOUT)
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()}")
        data += chunk
    return data.decode().strip()


def one_run(browser: Any, url: str, env: dict[str, str], tmp: Path,
            jobs: bool) -> dict[str, float]:
    port = free_port()
    log = tmp / "server.log"
    read_fd, write_fd = os.pipe()
    with log.open("w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", LAUNCH, "dashboard", "--host", "127.0.0.1",
                                 "--port", str(port), "--url", url, "--ready-fd", str(write_fd),
                                 "--jobs" if jobs else "--no-jobs"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                pass_fds=(write_fd,))
    os.close(write_fd)
    context = None
    try:
        base = await_ready(read_fd, proc, log)
        figures = {"ready": time.perf_counter() - t0, "cpu": cpu_seconds(proc.pid)}
        with urllib.request.urlopen(base + "health", timeout=TIMEOUT) as r:
            assert r.status == 200
        figures["answering"] = time.perf_counter() - t0
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT * 1000)
        page.goto(base)
        page.get_by_role("button", name="Log in").wait_for()
        figures["login form"] = time.perf_counter() - t0
        page.get_by_placeholder("user name").fill(USER)
        page.get_by_placeholder("password").fill(PASSWORD)
        clicked, cpu_clicked = time.perf_counter(), cpu_seconds(proc.pid)
        page.get_by_role("button", name="Log in").click()
        page.get_by_test_id("role").wait_for()
        page.get_by_test_id("fill-count").wait_for()
        page.locator("canvas").first.wait_for()
        done = time.perf_counter()
        figures["dashboard"] = done - t0
        figures["login → dashboard"] = done - clicked
        figures["server cpu login"] = cpu_seconds(proc.pid) - cpu_clicked
        return figures
    finally:
        if context is not None:
            context.close()
        os.close(read_fd)
        stop_process(proc)


def document_build(url: str, env: dict[str, str], runs: int) -> list[float]:
    """CPU seconds to build a logged-in session's page (see the module docstring)."""
    os.environ.update(env)
    import panel as pn
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    import tradelab as tl
    from tradelab.app import build_dashboard_services, build_registry
    from tradelab.dashboard.app import DashboardApp, preload
    from tradelab.dashboard.login import UserSession
    from tradelab.store import Store

    settings = tl.load_config()
    services = build_dashboard_services(settings, Store(url), build_registry(settings))
    pn.config.apply_signatures = False  # as the server sets it
    preload()
    session = UserSession(services.auth)
    session.login(USER, PASSWORD)
    times = []
    try:
        for _ in range(runs + 1):  # the first one warms Panel's own caches: left out
            doc = Document()
            start = time.process_time()
            with set_curdoc(doc):
                pn.extension("tabulator")
                app = DashboardApp(services, session=session, live=False)
                app.resume()
                doc.add_root(pn.Column(app.root).get_root(doc))
                doc.to_json()
            times.append(time.process_time() - start)
    finally:
        services.close()
    return times[1:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--jobs", action="store_true", help="start with job triggering (--jobs)")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="tradelab-bench-dashboard-"))
    url = f"sqlite:///{tmp / 'bench.db'}"
    secret = secrets.token_urlsafe(48)
    seed(url, secret)
    env = {**os.environ, "TRADELAB_HOME": str(ROOT), "TRADELAB__AUTH__JWT_SECRET": secret,
           "TRADELAB__CACHE__DIR": str(tmp / "cache"), "TRADELAB__STORE__URL": url}
    runs: list[dict[str, float]] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for _ in range(args.runs):
                runs.append(one_run(browser, url, env, tmp, args.jobs))
        finally:
            browser.close()
    builds = document_build(url, env, args.runs)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"tradelab dashboard start-up, {args.runs} runs (new process each), "
          f"jobs {'on' if args.jobs else 'off'}, {os.cpu_count()} CPUs, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'from process start to':<24} {'median':>8} {'min':>8} {'max':>8}")
    for key in ("ready", "answering", "login form", "dashboard"):
        values = [r[key] for r in runs]
        print(f"{key:<24} {statistics.median(values):7.2f}s {min(values):7.2f}s "
              f"{max(values):7.2f}s")
    for key, label in (("login → dashboard", "login click → dashboard"),
                       ("server cpu login", "server CPU login → dash"),
                       ("cpu", "server CPU at ready"), ("build", "document build (CPU)")):
        values = builds if key == "build" else [r[key] for r in runs]
        print(f"{label:<24} {statistics.median(values):7.2f}s {min(values):7.2f}s "
              f"{max(values):7.2f}s")


if __name__ == "__main__":
    main()
