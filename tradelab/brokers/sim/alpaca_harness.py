"""Start the Alpaca simulator for a test, a benchmark or a rehearsal: the Binance harness's API.

::

    sim = start_alpaca_sim({"ORCL": bars}, key="k", secret="s")
    TradingClient("k", "s", url_override=sim.rest_url)
    TradingStream("k", "s", url_override=sim.ws_url)     # ws://127.0.0.1:PORT/stream
    sim.advance(2); sim.inject("drop_ack=once"); sim.orders(); sim.restart(); sim.stop()

:class:`AlpacaSimHandle` is :class:`tradelab.brokers.sim.harness.SimHandle` (the
same controls, the same ``/_sim/*`` endpoints, ``in_process=False`` runs
``tradelab venue-sim alpaca`` and waits for its ``READY`` line) with the Alpaca
application in process and Alpaca's stream URL.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from tradelab.brokers.sim.alpaca import AlpacaSim, build_book
from tradelab.brokers.sim.harness import SimHandle


class AlpacaSimHandle(SimHandle):
    """A running Alpaca simulator (see :class:`~tradelab.brokers.sim.harness.SimHandle`).

    ``sim`` is the in-process :class:`~tradelab.brokers.sim.alpaca.AlpacaSim`
    (``None`` for a child process); ``orders()`` are Alpaca order objects.
    """

    sim: AlpacaSim | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"

    def _make_app(self) -> Any:
        kw = dict(self.book_kw)
        cash = Decimal(str((kw.get("balances") or {}).get("USD", 100_000)))
        book = build_book(self.bars, cash=cash, whole_shares=tuple(kw.get("whole_shares", ())),
                          volume_fraction=kw.get("volume_fraction"))
        self.sim = AlpacaSim(book, key=self.key, secret=self.secret, faults=self.faults,
                             seed=self.seed, bar_seconds=self.bar_seconds,
                             state_path=self.state_path, rate_limit=kw.get("rate_limit"),
                             on_restart=lambda: threading.Thread(target=self.restart,
                                                                 daemon=True).start())
        self.faults = ""  # a fault spec given at start applies to the first run only
        return self.sim.app()


def start_alpaca_sim(bars: dict[str, pd.DataFrame], *, key: str, secret: str, port: int = 0,
                     faults: str | None = None, seed: int = 0, bar_seconds: float = 0.0,
                     state_path: str | Path | None = None, in_process: bool = True,
                     **book_kw: Any) -> AlpacaSimHandle:
    """Start the Alpaca trading-API simulator on loopback.

    Parameters
    ----------
    bars
        Symbol (``ORCL``) → bars (``open, high, low, close, volume``, UTC index).
    key, secret
        The key pair it accepts (``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY``).
    port
        0: any free port.
    faults, seed
        A fault SPEC (:mod:`tradelab.brokers.sim.faults`) and the seed of its draws.
    bar_seconds
        Replay a bar every that many seconds; 0: only :meth:`SimHandle.advance`.
    state_path
        Where the venue keeps its state (default: a temporary file, so ``restart`` keeps it).
    in_process
        False runs ``tradelab venue-sim alpaca`` as a child process.
    **book_kw
        ``balances`` (``{"USD": cash}``, default 100,000), ``volume_fraction``;
        in process only: ``whole_shares`` (symbols not fractionable) and
        ``rate_limit`` (requests per minute; Alpaca's is 200).
    """
    return AlpacaSimHandle("alpaca", bars, key=key, secret=secret, port=port, faults=faults,
                           seed=seed, bar_seconds=bar_seconds, state_path=state_path,
                           in_process=in_process, **book_kw)


__all__ = ["AlpacaSimHandle", "start_alpaca_sim"]
