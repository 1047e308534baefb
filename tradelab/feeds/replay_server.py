"""A websocket server that replays historical bars as a live feed, with fault injection.

It serves one time line (the bars of its symbols merged by time) to clients that
send ``{"op": "subscribe", ...}`` (see :mod:`tradelab.feeds.protocol`).

Modes
-----
``replay``
    Each subscription starts after its ``since`` (or at the beginning): a
    client that reconnects with ``since`` = its last bar loses nothing.
``live``
    Like a real venue, ``since`` is ignored: a subscription starts at the
    server's current position, which moves on while nobody listens (by
    ``Faults.gap_on_drop`` bars per injected drop), so a client must backfill.

Faults are deterministic: the random choices of connection ``k`` come from
``random.Random(f"{seed}:{k}")``; what was injected is counted in
:attr:`ReplayServer.injected` (``malformed:<reason>``, ``duplicate``, ``reorder``,
``drop``, ``stall``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tradelab.feeds.aggregate import bar_ticks
from tradelab.feeds.protocol import VERSION, encode_bar, encode_tick, iso, parse_time

# Each malformed kind is named by the reason WebsocketFeed must count it under.
MALFORMED: tuple[str, ...] = ("not_json", "not_object", "unknown_type", "missing_field",
                              "bad_type", "bad_time", "nan", "high_low", "non_positive")


@dataclass(frozen=True)
class Faults:
    """What the server does wrong, reproducibly.

    Parameters
    ----------
    seed
        Seeds each connection's random choices.
    drop_after
        Connection ``k`` (0-based, in order of subscription) is closed by the
        server after ``drop_after[k]`` bar messages; later connections are not.
    gap_on_drop
        ``live`` mode: bars that pass, unseen, while the client is away after a drop.
    stall_after, stall_seconds
        Connection 0 goes silent (no bars, no heartbeats) after ``stall_after``
        bar messages for ``stall_seconds``.
    abort
        Drop by resetting the TCP connection (no closing handshake, unsent
        data lost) instead of closing it cleanly.
    duplicate, reorder, malformed
        Per bar, the probability of sending it twice, of swapping it with the
        next bar, and of sending a malformed message (a random :data:`MALFORMED`
        kind) before it.
    """

    seed: int = 0
    drop_after: Sequence[int] = ()
    gap_on_drop: int = 0
    stall_after: int | None = None
    stall_seconds: float = 0.0
    abort: bool = False
    duplicate: float = 0.0
    reorder: float = 0.0
    malformed: float = 0.0


def malformed_message(kind: str, bar: dict[str, Any]) -> str:
    """A message broken in the way ``kind`` names, built from a good bar message."""
    bad = dict(bar)
    if kind == "not_json":
        return json.dumps(bar)[:-7]
    if kind == "not_object":
        return json.dumps([bar])
    if kind == "unknown_type":
        bad["type"] = "bra"
    elif kind == "missing_field":
        del bad["close"]
    elif kind == "bad_type":
        bad["close"] = str(bar["close"])
    elif kind == "bad_time":
        bad["time"] = "yesterday"
    elif kind == "nan":
        bad["volume"] = float("nan")  # json writes NaN, which json.loads accepts
    elif kind == "high_low":
        bad["high"], bad["low"] = bar["low"] * 0.9, bar["high"] * 1.1  # still positive
    elif kind == "non_positive":
        bad["open"] = -bar["open"]
    else:
        raise ValueError(f"unknown malformed kind {kind!r}")
    return json.dumps(bad)


class ReplayServer:
    """Serve ``{symbol: bars}`` over websocket on ``host:port`` (port 0: a free one).

    Parameters
    ----------
    frames
        Contract bar frames per symbol.
    speed
        ``"max"`` or bars per second.
    mode
        ``"replay"`` or ``"live"`` (see the module text).
    faults
        Injected faults (default none).
    ticks_per_bar
        When a client asks for ticks, this many ticks (>= 4) precede each bar.
    tick_interval
        The bar length the ticks are spread over (default: ``1d``).
    heartbeat
        Seconds of silence after which the server sends ``{"type": "heartbeat"}``.
    """

    def __init__(self, frames: Mapping[str, pd.DataFrame], *, speed: str | float = "max",
                 mode: str = "replay", faults: Faults | None = None, host: str = "127.0.0.1",
                 port: int = 0, ticks_per_bar: int = 4, tick_interval: str = "1d",
                 heartbeat: float = 1.0) -> None:
        if mode not in ("replay", "live"):
            raise ValueError(f"mode={mode!r}: expected 'replay' or 'live'")
        if speed != "max" and not (isinstance(speed, int | float) and speed > 0):
            raise ValueError(f"speed={speed!r}: expected 'max' or a positive number of bars/s")
        self.speed, self.mode, self.faults = speed, mode, faults or Faults()
        self.host, self.port = host, port
        self.ticks_per_bar, self.tick_interval, self.heartbeat = ticks_per_bar, tick_interval, heartbeat
        rows = []
        for sym, df in frames.items():
            values = df[["open", "high", "low", "close", "volume"]].to_numpy(float).tolist()
            rows += [(t, k, sym, v) for k, (t, v) in enumerate(zip(df.index, values, strict=True))]
        rows.sort(key=lambda r: (r[0], list(frames).index(r[2]), r[1]))
        self.timeline = [(t, sym, v) for t, _, sym, v in rows]
        self.last = {sym: df.index[-1] for sym, df in frames.items() if len(df)}
        self.position = 0          # live mode: the next bar the venue will publish
        self.connections = 0       # subscriptions so far (numbers the fault schedule)
        self.sent = 0              # bar messages sent, over all connections
        self.injected: Counter[str] = Counter()
        self._current = -1         # the connection allowed to move the live position
        self._server: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None

    # -- running ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``ws://host:port`` once started."""
        return f"ws://{self.host}:{self.port}"

    async def start_async(self) -> None:
        """Start listening on the running event loop (sets :attr:`port`)."""
        self._server = await serve(self._handle, self.host, self.port, close_timeout=2)
        self.port = next(iter(self._server.sockets)).getsockname()[1]

    async def serve_forever(self) -> None:
        """Listen (if not yet started) until cancelled (the CLI's entry point)."""
        if self._server is None:
            await self.start_async()
        await self._server.serve_forever()

    def start(self) -> ReplayServer:
        """Run the server on a background thread; returns once it listens."""
        ready = threading.Event()
        errors: list[BaseException] = []

        async def main() -> None:
            stopping = self._stopping = asyncio.Event()
            try:
                await self.start_async()
            except BaseException as exc:  # reported to start()'s caller
                errors.append(exc)
                return
            finally:
                ready.set()
            await stopping.wait()
            self._server.close()  # closes every connection; handlers end on ConnectionClosed
            await self._server.wait_closed()

        def run() -> None:
            with asyncio.Runner() as runner:
                self._loop = runner.get_loop()
                runner.run(main())

        self._thread = threading.Thread(target=run, name="tradelab-replay-server", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise TimeoutError("replay server did not start within 10 s")
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        """Close every connection and stop the background thread."""
        if self._loop is not None and self._thread is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(15)
            self._thread = None

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- one connection ----------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "hello", "server": "tradelab-replay",
                                  "version": VERSION, "mode": self.mode}))
        try:
            request = json.loads(await ws.recv())
            symbols = [str(s) for s in request["symbols"]]
            since = None if request.get("since") is None else parse_time(request["since"])
            ticks = bool(request.get("ticks", False))
            if request.get("op") != "subscribe":
                raise ValueError("op")
        except ConnectionClosed:
            return
        except Exception as exc:
            await ws.send(json.dumps({"type": "error", "error": f"bad subscribe: {exc}"}))
            await ws.close(1008, "bad subscribe")
            return
        conn = self.connections
        self.connections += 1
        self._current = conn
        with contextlib.suppress(ConnectionClosed):
            await self._stream(ws, conn, set(symbols), since, ticks)

    def _start_index(self, since: Any) -> int:
        if self.mode == "live":
            return self.position
        if since is None:
            return 0
        cut = pd.Timestamp(since)
        return next((i for i, row in enumerate(self.timeline) if row[0] > cut), len(self.timeline))

    async def _stream(self, ws: ServerConnection, conn: int, symbols: set[str], since: Any,
                      ticks: bool) -> None:
        f = self.faults
        rng = random.Random(f"{f.seed}:{conn}")
        drop_at = f.drop_after[conn] if conn < len(f.drop_after) else None
        interval = None if self.speed == "max" else 1.0 / float(self.speed)
        i, sent, held, stalled = self._start_index(since), 0, None, False
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while i < len(self.timeline):
            t, sym, (o, h, low, c, v) = self.timeline[i]
            i += 1
            if sym not in symbols:
                continue
            if interval is not None:
                next_at += interval
                await self._idle(ws, next_at - loop.time())
            if conn == 0 and not stalled and f.stall_after is not None and sent >= f.stall_after:
                stalled = True
                self.injected["stall"] += 1
                # Silent (no heartbeats either) until the time is up or the client hangs up.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ws.wait_closed(), f.stall_seconds)
            if ticks:
                for tt, p, s in bar_ticks(t, o, h, low, c, v, self.tick_interval,
                                          self.ticks_per_bar):
                    await ws.send(encode_tick(sym, pd.Timestamp(tt, tz="UTC"), p, s))
            msg = encode_bar(sym, t, o, h, low, c, v)
            if f.malformed and rng.random() < f.malformed:
                kind = rng.choice(MALFORMED)
                self.injected[f"malformed:{kind}"] += 1
                await ws.send(malformed_message(kind, json.loads(msg)))
            if held is None and f.reorder and rng.random() < f.reorder:
                held = msg  # sent after the next bar
                self.injected["reorder"] += 1
            else:
                await self._send_bar(ws, msg)
                sent += 1
                if held is not None:
                    await self._send_bar(ws, held)
                    sent, held = sent + 1, None
            if f.duplicate and rng.random() < f.duplicate:
                self.injected["duplicate"] += 1
                await self._send_bar(ws, msg)
            if self.mode == "live" and conn == self._current:
                self.position = i
            if drop_at is not None and sent >= drop_at:
                self.injected["drop"] += 1
                if self.mode == "live":
                    self.position = min(len(self.timeline), i + f.gap_on_drop)
                if f.abort:
                    ws.transport.abort()
                else:
                    await ws.close(1001, "injected drop")
                return
        if held is not None:
            await self._send_bar(ws, held)
        await ws.send(json.dumps({"type": "end", "last": {s: iso(t) for s, t in self.last.items()
                                                          if s in symbols}}))
        # Stay up (heartbeating) until the client hangs up, like a venue after the close.
        while True:
            try:
                await asyncio.wait_for(ws.wait_closed(), self.heartbeat)
                return
            except TimeoutError:
                await ws.send(json.dumps({"type": "heartbeat"}))

    async def _send_bar(self, ws: ServerConnection, msg: str) -> None:
        await ws.send(msg)
        self.sent += 1

    async def _idle(self, ws: ServerConnection, seconds: float) -> None:
        """Wait ``seconds``, sending a heartbeat for each ``heartbeat`` of silence."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            await asyncio.sleep(min(left, self.heartbeat))
            if end - loop.time() > 0:
                await ws.send(json.dumps({"type": "heartbeat"}))
