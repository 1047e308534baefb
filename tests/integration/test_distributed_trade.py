"""A sweep with a direction and stops on a real Dask LocalCluster gives the local table."""

from __future__ import annotations

import pandas as pd
import pytest

from tradelab.research.sweep import sweep

pytestmark = pytest.mark.timeout(600)


def test_dask_sweep_with_shorts_and_stops_equals_local(spx: pd.DataFrame, registry) -> None:
    bars = spx.iloc[-1500:]
    grid = {"fast": [5, 10, 20], "slow": [30, 50]}
    kwargs = {"direction": "both", "sl": 0.03, "tp": 0.08, "size_type": "value",
              "size": 40_000.0, "progress": False, "registry": registry, "chunk_size": 2}
    local = sweep("sma_cross", bars, grid, workers=1, **kwargs)
    remote = sweep("sma_cross", bars, grid, cluster="local", workers=1, **kwargs)
    pd.testing.assert_frame_equal(local.table, remote.table)
    plain = sweep("sma_cross", bars, grid, workers=1, progress=False, registry=registry,
                  chunk_size=2)
    assert not local.table["final_equity"].equals(plain.table["final_equity"])
