"""A real API server in its own process, for tests that need one (memory, schemathesis).

:func:`serve` runs ``python -m tests.integration.api_proc STORE_URL [--max-body-bytes N]``,
which migrates and seeds the store, adds the test users and an admin API key,
binds a free port on 127.0.0.1 and prints one JSON line ``{"url", "api_key",
"pid"}`` to stdout before serving (the socket is already listening, so the URL
works at once). Rate limits are off (the tests measure other things), and a job
runner serves the one job ``nightly``.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from tests.unit.api.helpers import PASSWORDS, ROOT, auth_settings, seed_trading
from tradelab.api.app import create_app
from tradelab.api.jobs import RunnerJobs
from tradelab.app import drift_reports
from tradelab.auth import ApiSettings
from tradelab.config import load_config
from tradelab.monitor.logging import configure_logging
from tradelab.monitor.metrics import Metrics
from tradelab.store import Store
from tradelab.strategy.registry import StrategyRegistry
from tradelab.testing import stop_process


@dataclass
class Spec:
    """The one configured job, ``nightly`` (its runs start at once and record nothing)."""

    notebook: Path = Path("notebooks/nightly.ipynb")
    cron: str = "0 22 * * 1-5"
    enabled: bool = True


def _run(name: str, on_start: Callable[[int], None]) -> None:
    on_start(1)


@dataclass(frozen=True)
class ApiProcess:
    """A running server: its base URL, an admin API key and its process id."""

    url: str
    api_key: str
    pid: int
    log: Path


@contextmanager
def serve(store_url: str, log: Path, *args: str, timeout: float = 60) -> Iterator[ApiProcess]:
    """Start this module as a subprocess; yield once it listens; stop it afterwards.

    ``log`` receives the server's stderr (quoted by failing tests).
    """
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "tests.integration.api_proc", store_url,
                                 *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=err)
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                raise AssertionError(f"the API server printed nothing in {timeout} s: "
                                     f"{log.read_text()[-2000:]}")
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"the API server exited ({proc.wait()}): "
                                 f"{log.read_text()[-2000:]}")
        info = json.loads(line)
        yield ApiProcess(info["url"], info["api_key"], info["pid"], log)
    finally:
        stop_process(proc, 15)
        if proc.stdout is not None:
            proc.stdout.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store_url")
    parser.add_argument("--max-body-bytes", type=int, default=None)
    args = parser.parse_args(argv)
    # stdout carries the one JSON line the test reads; logs go to stderr.
    configure_logging("WARNING", stream=sys.stderr)
    limits: dict[str, object] = {"user_rate": 1e6, "user_burst": 10**6, "ip_rate": 1e6,
                                 "ip_burst": 10**6, "login_rate": 1e6, "login_burst": 10**6}
    if args.max_body_bytes is not None:
        limits["max_body_bytes"] = args.max_body_bytes
    store = Store(args.store_url)
    store.upgrade()
    seed_trading(store)
    registry = StrategyRegistry.discover([ROOT / "strategies"], entry_points=False)
    jobs = RunnerJobs(store, {"nightly": Spec()}, _run, workers=1)
    # Drift reports as `tradelab api` serves them (the seeded run has no recorded bars: 409).
    settings = load_config(environ={"TRADELAB_HOME": str(ROOT)}, home=ROOT)
    app = create_app(store=store, registry=registry, metrics=Metrics(), auth=auth_settings(), jobs=jobs,
                     api=ApiSettings.model_validate(limits), access_log=False,
                     drift=drift_reports(settings, store))
    auth = app.state.services.auth
    for name, pw in PASSWORDS.items():
        auth.add_user(name, pw, name, actor="test")
    key, _ = auth.create_api_key("admin", "tests", "admin", actor="test")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    print(json.dumps({"url": f"http://127.0.0.1:{port}", "api_key": key, "pid": os.getpid()}),
          flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[sock])
    sys.exit(0)


if __name__ == "__main__":
    main()
