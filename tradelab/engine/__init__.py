"""The event-driven paper/live engine. Never imports vectorbt (see ``parity`` for that)."""

from tradelab.engine.loop import Engine, EngineConfig, EngineResult
from tradelab.engine.runner import StrategyRunner
from tradelab.feeds.replay import ReplayFeed
from tradelab.interfaces import Bar

__all__ = ["Bar", "Engine", "EngineConfig", "EngineResult", "ReplayFeed", "StrategyRunner"]
