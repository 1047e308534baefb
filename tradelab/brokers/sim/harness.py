"""Start a venue simulator for tests, benchmarks and the demo: in this process or as a subprocess.

::

    sim = start_binance_sim({"BTC/USDT": bars}, key="k", secret="s")
    sim.rest_url, sim.ws_url          # http://127.0.0.1:PORT, ws://127.0.0.1:PORT
    sim.advance(2)                    # close two bars (orders match)
    sim.inject("drop_ack=once")       # a fault at exactly this moment
    sim.orders()                      # every order the venue holds (JSON as Binance shows it)
    sim.place("BTC/USDT", "buy", "0.01", client_id="by-hand")  # an order that is not ours
    sim.restart(); sim.stop()

``in_process=False`` runs ``tradelab venue-sim binance ...`` and waits for its
``READY <url>`` line (no fixed sleeps); a simulator that restarts itself (the
``restart_after`` fault, ``POST /_sim/restart``) exits with
:data:`~tradelab.brokers.sim.faults.RESTART_EXIT_CODE` and is started again on the
same port with the same state file by a supervising thread. ``kill()`` sends
SIGKILL (no state saved beyond what every change already wrote).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from tradelab.brokers.sim.binance_wire import build_book
from tradelab.brokers.sim.faults import RESTART_EXIT_CODE, FaultPlan


def write_bars(bars: dict[str, pd.DataFrame], path: Path) -> None:
    """Bars for a simulator subprocess (``--bars-file``)."""
    cols = ["open", "high", "low", "close", "volume"]
    path.write_text(json.dumps({s: {"index": [int(t.value) for t in pd.DatetimeIndex(f.index)],
                                    "columns": cols, "data": f[cols].astype(float).values.tolist()}
                                for s, f in bars.items()}))


def read_bars(path: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for s, d in json.loads(Path(path).read_text()).items():
        frame = pd.DataFrame(d["data"], columns=d["columns"],
                             index=pd.to_datetime(d["index"], unit="ns", utc=True))
        out[s] = frame.astype(float)
    return out


class _Server:
    """An aiohttp simulator app served from a daemon thread's event loop."""

    def __init__(self, make_app: Callable[[], Any], port: int) -> None:
        from aiohttp import web

        self.loop = asyncio.new_event_loop()
        self.runner: web.AppRunner | None = None
        self.port = port
        ready = threading.Event()
        errors: list[BaseException] = []

        async def start() -> None:
            self.runner = web.AppRunner(make_app(), shutdown_timeout=1.0)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(start())
            except BaseException as exc:  # reported to the starting thread
                errors.append(exc)
                ready.set()
                return
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True, name="venue-sim")
        self.thread.start()
        ready.wait(30)
        if errors:
            raise errors[0]

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class SimHandle:
    """A running simulator: its URLs, its control endpoints, stop and restart."""

    def __init__(self, venue: str, bars: dict[str, pd.DataFrame], *, key: str, secret: str,
                 port: int = 0, faults: str | None = None, seed: int = 0, bar_seconds: float = 0.0,
                 state_path: str | Path | None = None, in_process: bool = True,
                 order_limit: int = 100, **book_kw: Any) -> None:
        self.venue, self.bars, self.key, self.secret = venue, bars, key, secret
        self.order_limit = order_limit
        self.faults, self.seed, self.bar_seconds = faults or "", seed, bar_seconds
        self._tmp = tempfile.TemporaryDirectory(prefix=f"{venue}-sim-")
        self.state_path = Path(state_path) if state_path else Path(self._tmp.name) / "state.json"
        self.in_process, self.book_kw, self.port = in_process, book_kw, port
        self.restarts = 0
        self.server: _Server | None = None
        self.process: subprocess.Popen[str] | None = None
        self._stopping = False
        self._start()

    # -- urls -----------------------------------------------------------------------
    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    # -- lifecycle ------------------------------------------------------------------
    def _make_app(self) -> Any:
        if self.venue != "binance":
            raise ValueError(f"no in-process simulator for {self.venue!r} here")
        from tradelab.brokers.sim.binance import BinanceSim

        book = build_book(self.bars, **self.book_kw)
        sim = BinanceSim(book, key=self.key, secret=self.secret,
                         faults=FaultPlan(self.faults, self.seed), bar_seconds=self.bar_seconds,
                         state_path=self.state_path, order_limit=self.order_limit,
                         on_restart=lambda: threading.Thread(target=self.restart, daemon=True).start())
        self.faults = ""  # a fault spec given at start applies to the first run only
        return sim.app()

    def _start(self) -> None:
        if self.in_process:
            self.server = _Server(self._make_app, self.port)
            self.port = self.server.port
            return
        bars_file = Path(self._tmp.name) / "bars.json"
        if not bars_file.exists():
            write_bars(self.bars, bars_file)
        cmd = [sys.executable, "-c", "from tradelab.cli import main; main()", "venue-sim", self.venue,
               "--port", str(self.port), "--key", self.key, "--secret", self.secret,
               "--bars-file", str(bars_file), "--state", str(self.state_path), "--seed", str(self.seed),
               "--bar-seconds", str(self.bar_seconds), "--order-limit", str(self.order_limit)]
        if self.faults:
            cmd += ["--faults", self.faults]
            self.faults = ""
        for k in ("volume_fraction", "fee_rate", "start"):
            if self.book_kw.get(k) is not None:
                cmd += [f"--{k.replace('_', '-')}" if k != "start" else "--start-bar", str(self.book_kw[k])]
        for asset, amount in (self.book_kw.get("balances") or {}).items():
            cmd += ["--balance", f"{asset}={amount}"]
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None, text=True,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 60
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"simulator exited before it was ready ({self.process.wait()})")
            if line.startswith("READY "):
                self.port = int(line.split()[1].rsplit(":", 1)[1])
                break
        else:
            raise RuntimeError("simulator did not become ready in 60 s")
        threading.Thread(target=self._supervise, args=(self.process,), daemon=True).start()

    def _supervise(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for _ in proc.stdout:  # keep the pipe drained
            pass
        if proc.wait() == RESTART_EXIT_CODE and not self._stopping and self.process is proc:
            self.restarts += 1
            self._start()

    def stop(self) -> None:
        """Stop the simulator (state stays in :attr:`state_path`)."""
        self._stopping = True
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def kill(self) -> None:
        """SIGKILL a subprocess simulator (in-process: an abrupt stop)."""
        self._stopping = True
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
        elif self.server is not None:
            self.server.stop()
            self.server = None

    def restart(self) -> None:
        """Stop and start again on the same port with the state kept."""
        self.stop()
        self._stopping = False
        self.restarts += 1
        self._start()

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()

    # -- control endpoints ----------------------------------------------------------
    def _call(self, method: str, path: str, body: str | None = None) -> Any:
        req = urllib.request.Request(self.rest_url + path, method=method,
                                     data=body.encode() if body is not None else None)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def place(self, symbol: str, side: str, quantity: str, *, type_: str = "MARKET",
              price: str | None = None, client_id: str | None = None) -> dict[str, Any]:
        """Place an order through the venue's own signed API, as a person or another program
        would (a venue order that is not tradelab's); returns the venue's answer."""
        if self.venue != "binance":
            raise ValueError("place() speaks Binance's API")
        import hashlib
        import hmac
        from urllib.parse import urlencode

        params = {"symbol": symbol.replace("/", ""), "side": side.upper(), "type": type_,
                  "quantity": quantity, "timestamp": int(time.time() * 1000)}
        if price is not None:
            params.update(price=price, timeInForce="GTC")
        if client_id:
            params["newClientOrderId"] = client_id
        query = urlencode(params)
        query += "&signature=" + hmac.new(self.secret.encode(), query.encode(), hashlib.sha256).hexdigest()
        req = urllib.request.Request(self.rest_url + "/api/v3/order", method="POST", data=query.encode(),
                                     headers={"X-MBX-APIKEY": self.key,
                                              "Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def advance(self, n: int = 1) -> dict[str, Any]:
        """Close the next ``n`` bars; returns the new position."""
        return self._call("POST", f"/_sim/advance?n={n}", "")

    def inject(self, spec: str) -> dict[str, Any]:
        """Merge a fault SPEC into the running plan."""
        return self._call("POST", "/_sim/faults", spec)

    def clear_faults(self) -> dict[str, Any]:
        return self._call("DELETE", "/_sim/faults")

    def fired(self) -> dict[str, int]:
        """How often each fault fired since the last (re)start."""
        return self._call("GET", "/_sim/faults")["fired"]

    def disconnect(self) -> int:
        """Close every user-data stream now; returns how many were closed."""
        return self._call("POST", "/_sim/disconnect", "")["closed"]

    def orders(self) -> list[dict[str, Any]]:
        """Every order the venue holds, as the venue shows it."""
        return self._call("GET", "/_sim/orders")

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/_sim/status")

    def __enter__(self) -> SimHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_binance_sim(bars: dict[str, pd.DataFrame], *, key: str, secret: str, port: int = 0,
                      faults: str | None = None, seed: int = 0, bar_seconds: float = 0.0,
                      state_path: str | Path | None = None, in_process: bool = True,
                      order_limit: int = 100, **book_kw: Any) -> SimHandle:
    """Start the Binance spot simulator on loopback.

    Parameters
    ----------
    bars
        Unified symbol (``BTC/USDT``) → bars (``open, high, low, close, volume``).
    key, secret
        The API key and HMAC secret it accepts.
    port
        0: any free port.
    faults, seed
        A fault SPEC (:mod:`tradelab.brokers.sim.faults`) and the seed of its draws.
    bar_seconds
        Close a bar every that many seconds; 0: only :meth:`SimHandle.advance`.
    state_path
        Where the venue keeps its state (default: a temporary file, so ``restart`` keeps it).
    in_process
        False runs ``tradelab venue-sim binance`` as a subprocess.
    order_limit
        New orders accepted per 10 seconds (Binance's ORDERS limit; then 429 -1015).
    **book_kw
        ``markets``, ``balances``, ``fee_rate``, ``volume_fraction``, ``start`` of
        :func:`build_book` (``markets`` only in process).
    """
    return SimHandle("binance", bars, key=key, secret=secret, port=port, faults=faults, seed=seed,
                     bar_seconds=bar_seconds, state_path=state_path, in_process=in_process,
                     order_limit=order_limit, **book_kw)


def serve_binance(bars: dict[str, Any], *, key: str, secret: str, host: str = "127.0.0.1", port: int = 0,
          faults: str | None = None, seed: int = 0, bar_seconds: float = 0.0,
          state_path: str | Path | None = None, ready: Callable[[str], None] | None = None,
          order_limit: int = 100, **book_kw: Any) -> int:
    """Serve the simulator until interrupted (the ``tradelab venue-sim binance`` process).

    ``ready(url)`` is called once listening (the CLI prints ``READY <url>``). A restart
    (fault or ``/_sim/restart``) saves the state and returns
    :data:`~tradelab.brokers.sim.faults.RESTART_EXIT_CODE` for the process to exit with;
    an interrupt returns 0.
    """
    from tradelab.brokers.sim.binance import BinanceSim
    from tradelab.brokers.sim.serving import serve_app

    def make_app(restart: Callable[[], None]) -> Any:
        return BinanceSim(build_book(bars, **book_kw), key=key, secret=secret,
                          faults=FaultPlan(faults or "", seed), bar_seconds=bar_seconds,
                          state_path=state_path, on_restart=restart, order_limit=order_limit).app()

    return serve_app(make_app, host=host, port=port,
                     ready=None if ready is None else (lambda p: ready(f"http://{host}:{p}")))


__all__ = ["SimHandle", "build_book", "read_bars", "serve_binance", "start_binance_sim", "write_bars"]
