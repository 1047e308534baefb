"""A sweep with a borrow fee on a real Dask LocalCluster gives the local table: the
workers run the same fixed point per chunk, so each row is its own backtest's."""

from __future__ import annotations

import pandas as pd
import pytest

from tradelab.execution import Execution
from tradelab.research.sweep import sweep

pytestmark = pytest.mark.timeout(600)


def test_dask_sweep_with_a_borrow_fee_equals_local(spx: pd.DataFrame, registry) -> None:
    bars = spx.iloc[-1500:]
    grid = {"fast": [5, 10, 20], "slow": [30, 50]}
    kwargs = {"direction": "short", "progress": False, "registry": registry, "chunk_size": 2,
              "workers": 1}
    ex = Execution(borrow_fee=0.08)
    local = sweep("sma_cross", bars, grid, execution=ex, **kwargs)
    remote = sweep("sma_cross", bars, grid, execution=ex, cluster="local", **kwargs)
    pd.testing.assert_frame_equal(local.table, remote.table)
    free = sweep("sma_cross", bars, grid, execution=Execution(), **kwargs)
    both = local.table.merge(free.table, on=list(grid), suffixes=("", "_free"))
    assert len(both) == 6
    # every combination is short at some point, so the fee lowers every return
    assert (both["total_return"] < both["total_return_free"]).all()
