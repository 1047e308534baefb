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
    "PortfolioStrategy": "tradelab.strategy.portfolio",
    "check_weights_lookahead": "tradelab.strategy.portfolio",
    # data
    "validate_bars": "tradelab.data.validate",
    # research
    "backtest": "tradelab.research.backtest",
    "backtest_portfolio": "tradelab.research.portfolio",
    "PortfolioResult": "tradelab.research.portfolio_result",
    "load_universe": "tradelab.data.universe",
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
    "PortfolioResult",
    "PortfolioStrategy",
    "Settings",
    "Signals",
    "Strategy",
    "StrategyRegistry",
    "SweepResult",
    "WalkForward",
    "__version__",
    "backtest",
    "backtest_portfolio",
    "build",
    "check_lookahead",
    "check_weights_lookahead",
    "load_config",
    "load_universe",
    "sweep",
    "validate_bars",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from tradelab.app import App, build
    from tradelab.config import Settings, load_config
    from tradelab.data.universe import load_universe
    from tradelab.data.validate import validate_bars
    from tradelab.execution import Execution
    from tradelab.research.backtest import backtest
    from tradelab.research.portfolio import backtest_portfolio
    from tradelab.research.portfolio_result import PortfolioResult
    from tradelab.research.result import BacktestResult
    from tradelab.research.sweep import SweepResult, sweep
    from tradelab.research.walkforward import WalkForward
    from tradelab.strategy.base import Param, Signals, Strategy
    from tradelab.strategy.lookahead import check_lookahead
    from tradelab.strategy.portfolio import PortfolioStrategy, check_weights_lookahead
    from tradelab.strategy.registry import StrategyRegistry
