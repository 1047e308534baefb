"""Live market data: a websocket feed with reconnect and backfill, a replay server, ticks → bars.

See :mod:`tradelab.feeds.websocket`, :mod:`tradelab.feeds.replay_server`,
:mod:`tradelab.feeds.aggregate` and the wire format in :mod:`tradelab.feeds.protocol`.
"""

from __future__ import annotations

from tradelab.feeds.aggregate import TickAggregator, aggregate, bar_ticks
from tradelab.feeds.protocol import REASONS, Rejected, parse_message
from tradelab.feeds.replay_server import Faults, ReplayServer
from tradelab.feeds.sequence import Sequencer
from tradelab.feeds.websocket import FeedError, WebsocketFeed, market_backfill

__all__ = ["REASONS", "Faults", "FeedError", "Rejected", "ReplayServer", "Sequencer",
           "TickAggregator", "WebsocketFeed", "aggregate", "bar_ticks", "market_backfill",
           "parse_message"]
