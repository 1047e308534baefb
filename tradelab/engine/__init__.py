"""The event-driven paper/live engine. Never imports vectorbt (see ``parity`` for that)."""

from tradelab.engine.feed import Bar, ReplayFeed
from tradelab.engine.loop import Engine, EngineConfig, EngineResult
from tradelab.engine.runner import StrategyRunner

__all__ = ["Bar", "Engine", "EngineConfig", "EngineResult", "ReplayFeed", "StrategyRunner"]
