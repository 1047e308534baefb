"""The engine for a :class:`~tradelab.strategy.portfolio.PortfolioStrategy`: one step per time stamp.

A portfolio decides on the whole universe at once, so the engine acts once per
time stamp, after it has every symbol's bar of that time stamp.

**When a time stamp is complete.** A replay is wrapped in :class:`TimestampBatches`,
which groups the bars the feed delivers consecutively with the same time. A replay
(:class:`~tradelab.feeds.replay.ReplayFeed` over several symbols) delivers bars merged
in time order, so a time stamp is complete when the first bar of a later time stamp
arrives or the feed ends; a symbol without a bar then is missing at that time stamp
(the alignment rule of :mod:`tradelab.data.universe`: its last close is held and it is
not traded). A live multi-symbol feed (``App.portfolio_engine(feed=...)``, ``tradelab
paper STRATEGY --feed ...``) delivers a time stamp's bars interleaved, in any symbol
order, and a symbol may be late or silent: it is wrapped in
:class:`~tradelab.feeds.stamps.LiveStamps`, whose rule is: *t* is complete when every
symbol delivered its bar for *t*, or ``[feeds] stamp_cutoff`` seconds (default 5) after
the first bar of *t* arrived, or when a bar of a later time stamp arrives, or at the
end of the feed (or a stop); a symbol without a bar then is missing, as above; a bar
for a time stamp already complete is late: not applied, counted, logged and recorded
by the data-quality gate (``dropped``/``late_bar``); a stop completes the time stamp
pending (:meth:`PortfolioEngine._shutdown` when it came during a step). Its batches list the bars in
universe order, as a replay's, so a live run trades like the replay of the bars it
applied (``tests/integration/test_portfolio_live_feed.py``).

**A step** (time stamp *t*, bars of the symbols that have one):

1. A decision pending from *t-1* (``fill="next_open"``) is sized now, at *t*'s opens
   (on close-only data the open is the close, so it fills at *t*'s close):
   :meth:`Rebalancer.orders` calls :func:`~tradelab.orders.rebalance.rebalance` with
   the book's positions and cash, at the prices the orders fill at — research's
   convention (orders sized at the fill price, like bt and like the paper broker's
   percent entries sized at fill). The orders (one per symbol, sells first) go through
   the normal pipeline in list order (risk → write-ahead order row → broker), decided on
   ``created_at = t-1``; the paper broker fills them in this time stamp's open phase,
   the symbols with orders first, in the orders' order, so sells fund the buys.
2. The bars are appended to the :class:`~tradelab.engine.rebalancer.Rebalancer`'s
   panel; on a rebalance bar the strategy's weights on everything seen are the targets.
   With ``fill="close"`` they are sized at *t*'s closes and filled in the close phase;
   otherwise they wait for step 1 of the next time stamp (none on the last bar).
3. On the store poll (as the kill switch): the dashboard's close requests
   (:func:`~tradelab.engine.closer.act_on_close_requests`), one FLATTEN order per
   requested symbol held, priced at *t*'s close and filled at the next time stamp's
   open. Until it fills, a rebalance does not trade that symbol; after it, the next
   rebalance may establish the position again (the strategy's targets still say hold).
4. Every symbol is marked at its close; one equity point, one stored snapshot and one
   progress mark per time stamp (``run_bars`` keeps every bar).

**Resume** (``App.portfolio_engine(resume=RUN)``): the book, orders and broker come back
from the store like any run's; the panel is rebuilt from the replay's bars up to the
last processed time stamp and the decision taken on it is pending again (same client
order ids, so an order already written ahead is not sent twice).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, cast

from tradelab.engine.closer import act_on_close_requests
from tradelab.engine.loop import Engine
from tradelab.engine.rebalancer import Rebalancer
from tradelab.errors import halt_reason
from tradelab.interfaces import Bar
from tradelab.money import MONEY_CONTEXT, book
from tradelab.orders.model import Order, client_order_id
from tradelab.orders.rebalance import OrderIntent
from tradelab.risk.manager import FLATTEN, FLATTEN_MARK


class TimestampBatches:
    """A feed of bars as a feed of time stamps: lists of the bars with one time
    (consecutive in the underlying feed; see the module docstring)."""

    def __init__(self, feed: Any) -> None:
        self.feed = feed

    @property
    def start_after(self) -> Any:
        """The underlying replay's resume point (set by a resume)."""
        return getattr(self.feed, "start_after", None)

    @start_after.setter
    def start_after(self, value: Any) -> None:
        self.feed.start_after = value

    def close(self) -> None:
        """Stop after the current time stamp."""
        close = getattr(self.feed, "close", None)
        if close is not None:
            close()

    def history(self, symbol: str, through: datetime | None, n: int) -> Any:
        return self.feed.history(symbol, through, n)

    def __iter__(self) -> Iterator[list[Bar]]:
        batch: list[Bar] = []
        for bar in self.feed:
            if batch and bar[1] != batch[0][1]:
                yield batch
                batch = []
            batch.append(bar)
        if batch:
            yield batch


class PortfolioEngine(Engine):
    """An :class:`~tradelab.engine.loop.Engine` whose step is one time stamp of a universe.

    Built by :meth:`tradelab.app.App.portfolio_engine` through
    :func:`tradelab.app.wiring.assemble_engine` (``factory=``); ``rebalancer`` decides.
    The feed must yield lists of bars (:class:`TimestampBatches`).
    """

    def __init__(self, rebalancer: Rebalancer, *args: Any, **kwargs: Any) -> None:
        super().__init__([], *args, **kwargs)
        if not self._simulated:
            raise ValueError("a portfolio strategy runs on a simulated venue (the paper broker) "
                             "only: its orders are sized at the fill prices")
        self.rebalancer = rebalancer
        self.name = rebalancer.strategy.name
        self._pending: tuple[datetime, dict] | None = None
        self._fill_open = self.execution.fill == "next_open"
        if self.resumed_from is not None:
            self._restore(self.resumed_from)

    def _restore(self, through: datetime) -> None:
        """A resumed run: the panel again from the replay's bars up to the last processed
        time stamp, and the decision taken on it (pending under next-open fills)."""
        stamps: dict[Any, list[Bar]] = {}
        for sym in self.rebalancer.symbols:
            frame = self.feed.history(sym, through, 10**9)
            for t, row in zip(frame.index.to_pydatetime(), frame[
                    ["open", "high", "low", "close", "volume"]].itertuples(index=False),
                    strict=True):
                stamps.setdefault(t, []).append(Bar(sym, t, *row))
        times = sorted(stamps)
        desk = self.rebalancer
        for i, t in enumerate(times):
            desk.add(t, stamps[t])
            if desk.schedule == "change" or i == len(times) - 1:
                decided = desk.targets()  # "change" compares with the previous bar's weights
                if i == len(times) - 1 and decided is not None and self._fill_open:
                    self._pending = (t, decided)

    def step(self, bar: Any) -> None:
        """Process one time stamp (a list of bars with one time)."""
        bars = cast(list[Bar], bar)
        self._t0 = self._timer()
        t = bars[0][1]
        self.clock.advance(t)
        self.bars += len(bars)
        desk, manager, venue = self.rebalancer, self.orders, self._venue
        desk.add(t, bars)
        first: list[str] = []
        if self._pending is not None:
            decided, targets = self._pending
            self._pending = None
            first = self._send(decided, targets, fill_open=True)
        for b in _ordered(bars, first):
            for update in venue.on_bar(b[0], t, b[2], b[3], b[4], b[5], b[6], "open"):
                manager.apply(update)
        if self._flatten and self.kill_switch.engaged:
            for b in bars:
                self._do_flatten(b[0], t, b[5])
        first = []
        if not self.kill_switch.engaged:
            chosen = desk.targets()
            if chosen is not None:
                if self._fill_open:
                    self._pending = (t, chosen)
                else:
                    first = self._send(t, chosen, fill_open=False)
        for b in _ordered(bars, first):
            for update in venue.on_bar(b[0], t, b[2], b[3], b[4], b[5], b[6], "close"):
                manager.apply(update)
        if (self.store_backed and self._t0 >= self._next_kill_poll):
            self._next_kill_poll = self._timer() + self.config.kill_poll_seconds
            if self.kill_switch.refresh() and self.kill_switch.reason.startswith(FLATTEN_MARK):
                self._flatten = True
                for b in bars:
                    self._do_flatten(b[0], t, b[5])
            # the dashboard's "Close", priced at this close (engine.closer)
            act_on_close_requests(self, t, {b[0]: b[5] for b in bars})
        pf = self.portfolio
        for b in bars:
            pf.mark(b[0], b[5])
        cash, value = pf.cash, pf.positions_value
        equity = MONEY_CONTEXT.add(cash, value) if value else cash
        self.risk.on_equity(t, equity)
        self.curve.append((t, float(equity)))
        rec = self.recorder
        if rec is not None:
            rec.snapshot(t, cash, value, equity)
            for b in bars:
                rec.record_bar(b)
            rec.end_bar(t)

    def _shutdown(self, status: str) -> None:
        # A stop completes a live feed's pending time stamp (its bars arrived before the
        # stop; feeds.stamps): stopped while waiting, the feed itself delivered it; stopped
        # during a step, the loop left it pending. A replay has nothing pending.
        drain = getattr(self.feed, "drain", None)
        if status == "stopped" and self.halt_reason is None and drain is not None:
            try:
                for batch in drain():
                    self.step(batch)
            except Exception as exc:  # the run ends failed, like any step that raises
                status = "failed"
                self.halt_reason = halt_reason(exc)
        super()._shutdown(status)

    def _send(self, decided: datetime, targets: dict, *, fill_open: bool) -> list[str]:
        """Size the decision at the current time stamp's fill prices and send its orders."""
        desk, pf = self.rebalancer, self.portfolio
        prices, tradable = desk.row(fill_open)
        positions = {s: p.quantity for s, p in pf.positions.items() if p.quantity}
        orders = desk.orders(targets, positions, pf.cash, prices, tradable)
        # A symbol being closed on request (a working FLATTEN order, engine.closer) is not
        # traded by this decision, sized before the close fills; the next rebalance may
        # buy it back.
        closing = {o.symbol for o in self.orders.open_orders() if o.strategy == FLATTEN}
        if closing:
            orders = [o for o in orders if o.symbol not in closing]
        for intent in orders:
            self._guarded(self._submit, intent, decided, prices)
        return [o.symbol for o in orders]

    def _submit(self, intent: OrderIntent, decided: datetime, prices: dict) -> None:
        cid = client_order_id(str(self.run_id), self.name, intent.symbol, decided, intent.side)
        if cid in self.orders.orders:
            self.orders.submit(cid, started=self._t0)
            return
        order = Order(cid, self.account, self.name, intent.symbol, intent.side, intent.quantity,
                      decided, estimate=intent.quantity,
                      reference_price=book(prices[intent.symbol]), run_id=str(self.run_id))
        self.orders.add(order)


def _ordered(bars: list[Bar], first: list[str]) -> list[Bar]:
    """The bars of the symbols in ``first`` in that order, then the others."""
    if not first:
        return bars
    rank = {s: i for i, s in enumerate(first)}
    return sorted(bars, key=lambda b: rank.get(b[0], len(rank)))


__all__ = ["PortfolioEngine", "TimestampBatches"]
