"""REST API throughput and tail latency: authenticated ``GET /positions``, 50 concurrent clients.

Run: ``.venv/bin/python bench/api.py [--seconds 10] [--clients 50] [--db sqlite|URL]``.

What is measured
----------------
* A real ``tradelab api`` server (uvicorn, one process, default settings
  apart from rate limits raised out of the way) in a subprocess on
  127.0.0.1, over a SQLite store (WAL) seeded with one account and 20 open
  positions.
* ``--clients`` asyncio tasks, each its own ``httpx.AsyncClient`` with one
  keep-alive connection, send requests back to back for ``--seconds`` after
  a short warm-up. Latency is per request, client side (send to full
  body read).
* Two credentials: a bearer **access token** (JWT verify + one session/user
  lookup per request, so logout and revocation take effect at once) and an
  **API key** (prefix lookup + SHA-256 compare; last-used time written at
  most once a minute).
* Client and server share the same (2-core) machine: the figures are a floor
  for what the server alone can do.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from tradelab.testing import cpu_seconds, stop_process

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PASSWORD = "bench-passphrase-0123"
LAUNCH = ("import tradelab.cli.auth_cmd, tradelab.cli.api_cmd; "
          "from tradelab.cli import app; app()")


def seed(url: str, secret: str) -> str:
    """Account, positions, a viewer user; returns an API key for that user."""
    from tradelab.auth import AuthService, AuthSettings
    from tradelab.store import Store

    store = Store(url)
    store.upgrade()
    with store.transaction() as tx:
        tx.ensure_account("paper", Decimal("1000000"))
        for i in range(20):
            tx.set_position("paper", f"SYM{i:02d}", Decimal(10 + i), Decimal("101.25"), Decimal(0))
    auth = AuthService(store, AuthSettings(), secret=secret)
    auth.add_user("bench", PASSWORD, "viewer", actor="bench")
    key, _ = auth.create_api_key("bench", "bench", "viewer", actor="bench")
    store.close()
    return key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(base: str, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base) as c:
        while True:
            try:
                if (await c.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("API server did not start")
            await asyncio.sleep(0.1)


async def load(base: str, headers: dict[str, str], clients: int, seconds: float,
               warmup: float) -> tuple[int, int, list[float], float]:
    """Hammer ``/positions``; returns (ok, errors, latencies, measured seconds).

    Each simulated client is its own ``httpx.AsyncClient`` with one keep-alive
    connection: a single client with a 50-connection pool spends most of its
    CPU in pool bookkeeping and would measure httpx, not the server.
    """
    import httpx

    latencies: list[float] = []
    counts = {"ok": 0, "err": 0}
    start = time.perf_counter()
    measure_from = start + warmup
    stop = measure_from + seconds

    async def worker() -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits,
                                     timeout=30) as c:
            while True:
                t0 = time.perf_counter()
                if t0 >= stop:
                    return
                r = await c.get("/positions", params={"account": "paper"})
                t1 = time.perf_counter()
                if t0 >= measure_from:
                    if r.status_code == 200:
                        counts["ok"] += 1
                        latencies.append(t1 - t0)
                    else:
                        counts["err"] += 1

    await asyncio.gather(*(worker() for _ in range(clients)))
    return counts["ok"], counts["err"], latencies, seconds


def report(label: str, ok: int, err: int, lat: list[float], seconds: float) -> None:
    lat.sort()
    p = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000) if lat else (lambda q: float("nan"))
    print(f"{label:<14} {ok / seconds:8.0f} req/s   p50 {p(0.50):6.1f} ms   p99 {p(0.99):6.1f} ms   "
          f"max {lat[-1] * 1000 if lat else float('nan'):6.1f} ms   errors {err}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--db", default="sqlite", help="'sqlite' (temp file) or a store URL")
    args = ap.parse_args()

    import httpx

    tmp = Path(tempfile.mkdtemp(prefix="tradelab-bench-api-"))
    url = f"sqlite:///{tmp / 'bench.db'}" if args.db == "sqlite" else args.db
    secret = secrets.token_urlsafe(48)
    key = seed(url, secret)
    port = free_port()
    env = {**os.environ, "TRADELAB_HOME": str(tmp), "TRADELAB_CONFIG": "",
           "TRADELAB__AUTH__JWT_SECRET": secret,
           # Rate limits out of the way: this measures the server, not the limiter.
           "TRADELAB__API__USER_RATE": "1000000", "TRADELAB__API__USER_BURST": "1000000",
           "TRADELAB__API__IP_RATE": "1000000", "TRADELAB__API__IP_BURST": "1000000"}
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH, "api", "--port", str(port), "--url", url],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_ready(base))
        token = httpx.post(f"{base}/auth/login",
                           json={"username": "bench", "password": PASSWORD}).json()["access_token"]
        print(f"GET /positions (20 positions), {args.clients} concurrent clients, "
              f"{args.seconds:g} s after {args.warmup:g} s warm-up, uvicorn x1, "
              f"{os.cpu_count()} CPUs shared with the client")
        for label, headers in (("access token", {"Authorization": f"Bearer {token}"}),
                               ("API key", {"X-API-Key": key})):
            cpu0, client0, wall0 = cpu_seconds(proc.pid), time.process_time(), time.perf_counter()
            ok, err, lat, secs = asyncio.run(load(base, headers, args.clients, args.seconds,
                                                  args.warmup))
            wall = time.perf_counter() - wall0
            report(label, ok, err, lat, secs)
            print(f"{'':<14} server CPU {100 * (cpu_seconds(proc.pid) - cpu0) / wall:.0f}%, "
                  f"client CPU {100 * (time.process_time() - client0) / wall:.0f}% "
                  f"(of one core, whole run incl. warm-up)")
        if lat:
            print(f"(mean {statistics.fmean(lat) * 1000:.1f} ms over {len(lat)} requests)")
    finally:
        stop_process(proc)
        log.close()


if __name__ == "__main__":
    main()
