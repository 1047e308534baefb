"""A sweep with a time stop on a real Dask LocalCluster gives the local table (the
workers build the same cached time-stop simulation)."""

from __future__ import annotations

import pandas as pd
import pytest

from tradelab.research.sweep import sweep

pytestmark = pytest.mark.timeout(600)


def test_dask_sweep_with_a_time_stop_equals_local(spx: pd.DataFrame, registry) -> None:
    bars = spx.iloc[-1500:]
    grid = {"fast": [5, 10, 20], "slow": [30], "sl": [0.03, 0.05]}
    kwargs = {"direction": "both", "time_stop": 7, "progress": False, "registry": registry,
              "chunk_size": 2}
    local = sweep("sma_cross", bars, grid, workers=1, **kwargs)
    remote = sweep("sma_cross", bars, grid, cluster="local", workers=1, **kwargs)
    pd.testing.assert_frame_equal(local.table, remote.table)
    plain = sweep("sma_cross", bars, grid, workers=1, progress=False, registry=registry,
                  chunk_size=2, direction="both")
    assert (local.table["n_trades"] > plain.table["n_trades"]).all()
