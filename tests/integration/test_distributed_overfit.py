"""On a real two-process LocalCluster, the overfitting estimate and the walk-forward
result of a sweep are those of the local sweep (workers return the block sums and
sweep the training windows)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tradelab.research.sweep import sweep
from tradelab.strategy.registry import StrategyRegistry

ROOT = Path(__file__).resolve().parents[2]
GRID = {"fast": [5, 10, 20, 40], "slow": [30, 50, 100]}

pytestmark = pytest.mark.timeout(600)


def test_cluster_overfitting_and_walk_forward_equal_local(spx: pd.DataFrame) -> None:
    from distributed import Client, LocalCluster

    cls = StrategyRegistry.discover([ROOT / "strategies"], entry_points=False).get("sma_cross")
    bars = spx.iloc[-1500:]
    local = sweep(cls, bars, GRID, progress=False, chunk_size=4, walk_forward=3)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        remote = sweep(cls, bars, GRID, progress=False, chunk_size=4, walk_forward=3,
                       cluster=client)
    pd.testing.assert_frame_equal(remote.table, local.table)
    assert remote.overfitting == local.overfitting
    assert local.walk_forward is not None and remote.walk_forward is not None
    pd.testing.assert_frame_equal(remote.walk_forward.folds, local.walk_forward.folds)
    pd.testing.assert_series_equal(remote.walk_forward.equity, local.walk_forward.equity)
