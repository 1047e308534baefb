"""Start the Alpaca simulator for a test or a rehearsal, in this process or in a child process.

:func:`start_alpaca_sim` returns a :class:`SimHandle` with the URLs the alpaca-py
clients are pointed at, and the controls a scenario needs: ``advance(n)`` bars,
``inject(spec)`` faults, ``restart()`` (state kept, same port) and ``stop()``.
A child process announces readiness with a ``READY <port>`` line on its stdout;
the harness waits for that line (with a deadline), never for a fixed time.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import requests

from tradelab.brokers.sim.alpaca import AlpacaSim, build_book
from tradelab.brokers.sim.faults import RESTART_EXIT_CODE

READY_TIMEOUT = 60.0


class _InProcess:
    """The simulator's aiohttp server on its own event loop in a daemon thread."""

    def __init__(self, bars: dict[str, pd.DataFrame], opts: dict[str, Any], port: int) -> None:
        self.bars, self.opts, self.port = bars, opts, port
        self.sim: AlpacaSim | None = None
        self.thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None
        self.restarts = 0

    def start(self) -> int:
        from aiohttp import web

        ready = threading.Event()
        failure: list[BaseException] = []
        book = build_book(self.bars, cash=self.opts["cash"], whole_shares=self.opts["whole_shares"],
                          volume_fraction=self.opts["volume_fraction"])
        self.sim = AlpacaSim(book, key=self.opts["key"], secret=self.opts["secret"],
                             faults=self.opts["faults"], seed=self.opts["seed"],
                             state_path=self.opts["state_path"], on_restart=self._self_restart)

        async def main() -> None:
            self.loop, self.stopping = asyncio.get_running_loop(), asyncio.Event()
            assert self.sim is not None
            runner = web.AppRunner(self.sim.app(), access_log=None, handle_signals=False)
            await runner.setup()
            try:
                site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
                await site.start()
                self.port = runner.addresses[0][1]
            except OSError as exc:
                failure.append(exc)
                ready.set()
                await runner.cleanup()
                return
            ready.set()
            await self.stopping.wait()
            await runner.cleanup()

        self.thread = threading.Thread(target=asyncio.run, args=(main(),), name="alpaca-sim",
                                       daemon=True)
        self.thread.start()
        if not ready.wait(READY_TIMEOUT):
            raise TimeoutError("alpaca simulator did not start")
        if failure:
            raise failure[0]
        return self.port

    def _self_restart(self) -> None:
        # the restart_after fault, on the server's own loop: restart from another thread
        threading.Thread(target=self.restart, daemon=True).start()

    def stop(self) -> None:
        loop, stopping, thread = self.loop, self.stopping, self.thread
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # its loop closed meanwhile
                loop.call_soon_threadsafe(stopping.set)
        if thread is not None:
            thread.join(30)
        self.thread = None

    def restart(self) -> None:
        if self.opts["state_path"] is None:
            raise ValueError("restart needs a state path")
        self.stop()
        deadline = time.monotonic() + 10
        while True:  # the port is ours; a lingering socket may hold it for a moment
            try:
                self.start()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.restarts += 1


class _Child:
    """The simulator as ``python -m tradelab.brokers.sim.alpaca`` (restarted when it asks to)."""

    def __init__(self, bars: dict[str, pd.DataFrame], opts: dict[str, Any], port: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="alpaca-sim-"))
        for symbol, frame in bars.items():
            frame.to_parquet(self.dir / f"{symbol}.parquet")
        self.opts, self.port = opts, port
        self.proc: subprocess.Popen[str] | None = None
        self.restarts = 0
        self._watch: threading.Thread | None = None
        self._stopped = False

    def _argv(self, faults: str) -> list[str]:
        o = self.opts
        argv = [sys.executable, "-m", "tradelab.brokers.sim.alpaca", "--bars", str(self.dir),
                "--key", o["key"], "--secret", o["secret"], "--port", str(self.port),
                "--seed", str(o["seed"]), "--state", str(o["state_path"])]
        if faults:
            argv += ["--faults", faults]
        if o["volume_fraction"] is not None:
            argv += ["--volume-fraction", str(o["volume_fraction"])]
        return argv

    def start(self, faults: str | None = None) -> int:
        proc = subprocess.Popen(self._argv(self.opts["faults"] if faults is None else faults),
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT
        line = ""
        while not line.startswith("READY"):
            left = deadline - time.monotonic()
            if left <= 0 or proc.poll() is not None:
                proc.kill()
                raise TimeoutError("alpaca simulator process did not become ready")
            if select.select([proc.stdout], [], [], min(left, 1.0))[0]:
                line = proc.stdout.readline()
        self.port, self.proc = int(line.split()[1]), proc
        self._watch = threading.Thread(target=self._supervise, args=(proc,), daemon=True)
        self._watch.start()
        return self.port

    def _supervise(self, proc: subprocess.Popen[str]) -> None:
        """Start the process again when it exits asking for a restart (state kept)."""
        if proc.wait() == RESTART_EXIT_CODE and not self._stopped and self.proc is proc:
            self.start(faults="")
            self.restarts += 1

    def stop(self) -> None:
        self._stopped = True
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def restart(self) -> None:
        """SIGKILL the process and start it again on the same port from its state file."""
        proc = self.proc
        if proc is not None:
            self.proc = None
            proc.kill()
            proc.wait()
        self.start(faults="")
        self.restarts += 1


class SimHandle:
    """A running Alpaca simulator.

    Attributes
    ----------
    rest_url, ws_url
        ``url_override`` for ``TradingClient`` and ``TradingStream``.
    port, key, secret, state_path
        Where it listens, the key pair it accepts, where it keeps its state.
    """

    def __init__(self, server: _InProcess | _Child, key: str, secret: str,
                 state_path: Path | None) -> None:
        self._server, self.key, self.secret, self.state_path = server, key, secret, state_path

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"

    @property
    def sim(self) -> AlpacaSim | None:
        """The simulator object (in-process only; ``None`` for a child process)."""
        return self._server.sim if isinstance(self._server, _InProcess) else None

    @property
    def restarts(self) -> int:
        return self._server.restarts

    def _control(self, method: str, path: str, **kw: Any) -> Any:
        headers = {"APCA-API-KEY-ID": self.key, "APCA-API-SECRET-KEY": self.secret}
        r = requests.request(method, self.rest_url + path, headers=headers, timeout=30, **kw)
        r.raise_for_status()
        return r.json()

    def advance(self, n: int = 1) -> int:
        """Replay ``n`` bars (orders match on each); the number replayed."""
        sim = self.sim
        if sim is not None:
            return sim.advance(n)
        return int(self._control("POST", "/_sim/advance", params={"n": n})["advanced"])

    def inject(self, fault: str) -> dict[str, Any]:
        """Merge a fault SPEC (``"drop_ack=once"``) into the running plan; what is planned now."""
        sim = self.sim
        if sim is not None:
            sim.plan.update(fault)
            return sim.plan.describe()
        return dict(self._control("POST", "/_sim/faults", data=fault))

    def state(self) -> dict[str, Any]:
        """The book's state (orders, balances, cursor) and the faults fired."""
        return dict(self._control("GET", "/_sim/state"))

    def restart(self) -> None:
        """Restart the venue with its state kept, on the same port (a child is SIGKILLed)."""
        self._server.restart()

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> SimHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_alpaca_sim(bars: dict[str, pd.DataFrame], *, key: str, secret: str, port: int = 0,
                     faults: str | None = None, seed: int = 0, bar_seconds: float = 0,
                     state_path: str | Path | None = None, in_process: bool = True,
                     cash: Decimal = Decimal(100_000), volume_fraction: float | None = None,
                     whole_shares: tuple[str, ...] = ()) -> SimHandle:
    """Start a simulator over ``bars`` (symbol → ``open, high, low, close, volume`` frame).

    ``state_path`` defaults to a temporary file (so ``restart`` keeps state).
    ``bar_seconds`` is accepted for the CLI's signature; the harness replays only
    on :meth:`SimHandle.advance` (deterministic tests).
    """
    if bar_seconds:
        raise ValueError("the harness replays bars on advance(); use serve() for a wall-clock replay")
    path = Path(state_path) if state_path else Path(tempfile.mkdtemp(prefix="alpaca-state-")) / "state.json"
    opts = {"key": key, "secret": secret, "faults": faults or "", "seed": seed, "state_path": path,
            "cash": cash, "volume_fraction": volume_fraction, "whole_shares": whole_shares}
    server: _InProcess | _Child = _InProcess(bars, opts, port) if in_process else _Child(bars, opts, port)
    server.start()
    return SimHandle(server, key, secret, path)


__all__ = ["SimHandle", "start_alpaca_sim"]
