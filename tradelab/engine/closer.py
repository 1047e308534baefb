"""Acting on operators' close requests (the dashboard's "Close" on one position).

:func:`act_on_close_requests` is called by :meth:`tradelab.engine.loop.Engine.step`
on the same periodic store poll as the kill switch. For each of the run's pending
requests in the bar's symbol it closes what the engine holds there with one market
order tagged :data:`~tradelab.risk.manager.FLATTEN` (a sell for a long position, a
buy to cover a short one; the risk manager lets flatten orders through a halt), its
client id built from the run, the tag, the symbol and the bar like every other, so
a restarted engine regenerates the same id and never sends it twice. The request is
then marked ``done`` with that id, or ``nothing`` when the engine held nothing.

A portfolio engine (:class:`~tradelab.engine.portfolio_loop.PortfolioEngine`) calls it
for every symbol of each time stamp, on the same poll. **A close is not a change of
targets**: the strategy's weights still say hold, so the next scheduled rebalance of
a portfolio may buy the symbol back (a monthly rotation at the next month's first bar,
``"change"`` when its weights next change). The request closes the position now; to
keep it closed, stop the run or change the strategy. Until the closing order fills, a
rebalance does not trade that symbol (it would be sized on the position being closed).

An engine without a store (``engine.store`` is ``None``: in-memory runs) has no
requests to read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import structlog

from tradelab.orders.model import client_order_id
from tradelab.risk.manager import FLATTEN

log = structlog.get_logger("tradelab.engine")


def act_on_close_requests(engine: Any, t: datetime, closes: Mapping[str, float]) -> list[str]:
    """Close the positions the run was asked to close in the symbols of this time stamp
    (``t``; ``closes``: symbol → this bar's close, the price each closing order is
    decided at); the client ids of the closing orders sent or already working. One
    read of the pending requests per call, whatever the number of symbols."""
    store = engine.store
    if store is None or not isinstance(engine.run_id, int):
        return []
    repo = store.closes
    sent: list[str] = []
    for req in repo.pending(engine.run_id):
        sym = req.symbol
        if sym not in closes:
            continue  # priced and sent at a bar of its own symbol
        held = engine.portfolio.position(sym)
        if held == 0:
            repo.finish(req.id, "nothing", None, t)
            log.info("close_request_nothing_held", request=req.id, symbol=sym)
            continue
        working = [o for o in engine.orders.open_orders()
                   if o.symbol == sym and o.strategy == FLATTEN]
        if working:  # a flatten already closing it (decided at an earlier bar)
            cid = working[0].client_order_id
        else:
            cid = client_order_id(str(engine.run_id), FLATTEN, sym, t,
                                  "sell" if held > 0 else "buy")
            engine._do_flatten(sym, t, closes[sym])  # cancels the symbol's other orders first
        if cid not in engine.orders.orders:
            continue  # not sent (e.g. refused on a lot grid): stays pending, retried
        repo.finish(req.id, "done", cid, t)
        log.info("close_request_done", request=req.id, symbol=sym, client_order_id=cid)
        sent.append(cid)
    return sent


__all__ = ["act_on_close_requests"]
