"""The end of ``tradelab demo``: a short *live* session against the Binance-protocol simulator.

The same ``sma_cross`` that was just backtested trades through ``CcxtBroker`` (the
unmodified ccxt client, REST + the WebSocket-API order stream) against ``tradelab
venue-sim binance`` started in this process on loopback, which replays real bars
and misbehaves on purpose: the first order's acknowledgement is dropped after the
venue accepted it, and the order stream is cut mid-session. What the engine
resolved (the lost acknowledgement, by asking the venue) and what reconciliation
found is printed, with the venue's own count of orders per client id.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

KEY, SECRET = "demo-key", "demo-secret"  # the simulator's keys, not a real venue's


@contextmanager
def _venue_keys() -> Iterator[None]:
    # Credentials are read from the environment only; the demo's are the simulator's own
    # and are put back as they were afterwards.
    names = {"TRADELAB_CCXT_API_KEY": KEY, "TRADELAB_CCXT_SECRET": SECRET}
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update(names)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def venue_session(tl: Any, bars: Any, symbol: str, bar_seconds: float = 0.05) -> Any:
    """Trade ``sma_cross`` live through ccxt against the Binance simulator replaying ``bars``.

    The store is ``var/demo/venue.db`` (recreated each time); returns the engine.
    """
    from tradelab.app import build
    from tradelab.brokers.sim.harness import start_binance_sim

    market = f"{symbol}/USDT"
    warm = 40
    db = tl.settings.path("var/demo/venue.db")
    db.parent.mkdir(parents=True, exist_ok=True)
    db.unlink(missing_ok=True)
    sim = start_binance_sim({market: bars}, key=KEY, secret=SECRET, bar_seconds=bar_seconds, start=warm,
                            balances={"USDT": "100000"}, faults="drop_ack=once")
    try:
        s = tl.settings
        settings = s.model_copy(update={
            "live": s.live.model_copy(update={"enabled": True, "base_url": sim.rest_url,
                                              "ws_url": sim.ws_url}),
            "data": s.data.model_copy(update={"ccxt": s.data.ccxt.model_copy(update={
                "base_url": sim.rest_url, "ws_url": sim.ws_url})}),
            "feeds": s.feeds.model_copy(update={"ccxt_interval": "1d", "ccxt_mode": "rest",
                                                "poll_seconds": bar_seconds / 2})})
        venue_app = build(settings)
        n = len(bars) - warm  # bars the venue closes after the engine starts
        typer.echo(f"\nLive session through ccxt: {sim.rest_url} speaks Binance spot (REST, "
                   f"WebSocket-API order stream, klines) replaying {n} real {symbol} bars as {market} "
                   "at one bar every {:g} s; it drops the first order's acknowledgement and cuts "
                   "the order stream halfway".format(bar_seconds))
        with _venue_keys():
            store = venue_app.open_store(f"sqlite:///{db}")
            feed = venue_app.feed("ccxt", market, source="ccxt", start=bars.index[warm],
                                  backoff_base=0.05)
            engine = venue_app.engine("sma_cross", market, source="ccxt", feed=feed, store=store,
                                      broker="ccxt", account="demo-venue", flush_seconds=0.5)
            half = n // 2

            def on_bar(_bar: Any) -> None:
                if engine.bars == half:
                    sim.disconnect()  # the order stream drops; the adapter reconnects and catches up
                if engine.bars >= n - 1:  # the venue's last bar never closes: done
                    engine.request_stop("demo: the venue's bars are done")

            with venue_app.session(engine, store=store):
                result = engine.run(on_bar=on_bar)
            final = engine.reconciler.run("manual") if engine.reconciler is not None else None
        _print(engine, result, final, sim)
        typer.echo(f"  stored in {db}")
        store.close()
        close = getattr(engine.broker, "close", None)  # the adapter's order-stream thread
        if close is not None:
            close()
        return engine
    finally:
        sim.stop()


def _print(engine: Any, result: Any, final: Any, sim: Any) -> None:
    orders = engine.orders
    per_id = Counter(o["clientOrderId"] for o in sim.orders())
    stream = getattr(engine.broker, "stream", None)
    typer.echo(f"  run {result.run_id} ({result.stopped}) on account {result.account}: {result.bars} bars, "
               f"equity {float(result.equity):,.2f}, fills {len(result.fills)}, "
               f"orders {len(orders.orders)} (at the venue: {len(per_id)}, none twice: "
               f"{all(c == 1 for c in per_id.values())})")
    typer.echo(f"  lost acknowledgements resolved by asking the venue: {orders.resolved}; "
               f"order-stream reconnects: {getattr(stream, 'reconnects', 0)}; "
               f"faults fired: {sim.fired()}")
    for rec in [*engine.reconciliations, *([final] if final is not None else [])]:
        found = ", ".join(f"{f.kind} {f.symbol or ''}".strip() for f in rec.findings) or "nothing to fix"
        typer.echo(f"  reconciliation ({rec.trigger}): {'ok' if rec.ok else 'MISMATCH'}, "
                   f"{rec.booked_fills} fill(s) booked, {found}")
