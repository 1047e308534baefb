"""tradelab: research-to-live trading in Jupyter.

The names in ``__all__`` are the public API for notebooks. They are imported
lazily so that ``import tradelab`` stays fast and does not pull in the research
stack (vectorbt, numba, holoviews) until a research function is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradelab._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # configuration and composition root
    "Settings": "tradelab.config",
    "load_config": "tradelab.config",
    "build": "tradelab.app",
    "App": "tradelab.app",
    # strategies
    "Strategy": "tradelab.strategy.base",
    "Param": "tradelab.strategy.base",
    "Signals": "tradelab.strategy.base",
    "StrategyRegistry": "tradelab.strategy.registry",
    "check_lookahead": "tradelab.strategy.lookahead",
    # data
    "validate_bars": "tradelab.data.validate",
    # research
    "backtest": "tradelab.research.backtest",
    "sweep": "tradelab.research.sweep",
    "BacktestResult": "tradelab.research.result",
    "SweepResult": "tradelab.research.sweep",
    "WalkForward": "tradelab.research.walkforward",
    "Execution": "tradelab.execution",
}

__all__ = [
    "App",
    "BacktestResult",
    "Execution",
    "Param",
    "Settings",
    "Signals",
    "Strategy",
    "StrategyRegistry",
    "SweepResult",
    "WalkForward",
    "__version__",
    "backtest",
    "build",
    "check_lookahead",
    "load_config",
    "sweep",
    "validate_bars",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from tradelab.app import App, build
    from tradelab.config import Settings, load_config
    from tradelab.data.validate import validate_bars
    from tradelab.execution import Execution
    from tradelab.research.backtest import backtest
    from tradelab.research.result import BacktestResult
    from tradelab.research.sweep import SweepResult, sweep
    from tradelab.research.walkforward import WalkForward
    from tradelab.strategy.base import Param, Signals, Strategy
    from tradelab.strategy.lookahead import check_lookahead
    from tradelab.strategy.registry import StrategyRegistry
