"""Research: vectorized backtests and sweeps on vectorbt, reports and plots.

Importing this package is cheap: vectorbt, numba and holoviews are imported by
the modules that need them, when a function is first called. The names below
resolve lazily.
"""

from __future__ import annotations

from tradelab._lazy import defer_import, defer_package_init, lazy_exports

_EXPORTS: dict[str, str] = {
    "backtest": "tradelab.research.backtest",
    "backtest_portfolio": "tradelab.research.portfolio",
    "PortfolioResult": "tradelab.research.portfolio_result",
    "BacktestResult": "tradelab.research.result",
    "sweep": "tradelab.research.sweep",
    "SweepResult": "tradelab.research.sweep",
    "Execution": "tradelab.research.conventions",
    "write_report": "tradelab.research.report",
    "plot_equity": "tradelab.research.plots",
    "plot_drawdown": "tradelab.research.plots",
    "plot_trades": "tradelab.research.plots",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

# Before any research module imports vectorbt (→ plotly → nbformat → jsonschema →
# rfc3987_syntax's grammar compile): see defer_import.
defer_import("nbformat")
# vectorbt's returns modules (and sklearn's, via vectorbt.generic) import scipy.stats,
# ~0.6 s, for statistics a backtest does not compute; vectorbt takes these three by name.
defer_import("scipy.stats", stand_ins=("skew", "kurtosis", "norm"), importers=("vectorbt.",))
# numba's linear algebra loads scipy.linalg, whose array-API layer clones numpy's
# namespace and so imports numpy.f2py (a Fortran wrapper generator, ~0.1 s).
defer_import("numpy.f2py")
# numba's first compilation or cache load checks for BLAS with ``import
# scipy.linalg.cython_blas``, which runs scipy.linalg's __init__ (all of scipy's
# linear algebra, ~0.2 s); the submodule alone is what it needs.
defer_package_init("scipy.linalg")
# vectorbt's __init__ imports all of vectorbt; a backtest loads the simulation only.
from tradelab.research._startup import defer_vectorbt  # noqa: E402  (after defer_import)

defer_vectorbt()
# ... and vectorbt's generic accessors import scikit-learn (and much of scipy) for
# transforms a backtest never calls.
from tradelab.research._sklearn_later import defer_sklearn  # noqa: E402

defer_sklearn()
