"""Live market data: websocket, ccxt and polling feeds, a replay server, ticks → bars.

See :mod:`tradelab.feeds.websocket`, :mod:`tradelab.feeds.ccxt_feed`,
:mod:`tradelab.feeds.polling` (their shared machinery in :mod:`tradelab.feeds.base`),
:mod:`tradelab.feeds.replay_server`, :mod:`tradelab.feeds.aggregate` and the wire
format in :mod:`tradelab.feeds.protocol`.
"""

from __future__ import annotations

from tradelab.feeds.aggregate import TickAggregator, aggregate, bar_ticks
from tradelab.feeds.base import FeedError, ThreadFeed, backoff_delay
from tradelab.feeds.ccxt_feed import CcxtFeed
from tradelab.feeds.polling import PollingFeed
from tradelab.feeds.protocol import REASONS, Rejected, parse_message
from tradelab.feeds.replay_server import Faults, ReplayServer
from tradelab.feeds.sequence import Sequencer
from tradelab.feeds.websocket import WebsocketFeed, market_backfill

__all__ = ["REASONS", "CcxtFeed", "Faults", "FeedError", "PollingFeed", "Rejected",
           "ReplayServer", "Sequencer", "ThreadFeed", "TickAggregator", "WebsocketFeed",
           "aggregate", "backoff_delay", "bar_ticks", "market_backfill", "parse_message"]
