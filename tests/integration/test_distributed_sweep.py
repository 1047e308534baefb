"""sweep(cluster=...) on a real two-process LocalCluster: identical tables, data via the
cache, multi-symbol, retried and permanently failing chunks."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tradelab.config import Settings, load_config
from tradelab.research.distributed import BarsRef, ChunkFailedError, bars_digest
from tradelab.research.sweep import sweep
from tradelab.strategy.registry import StrategyRegistry

ROOT = Path(__file__).resolve().parents[2]
GRIDS = {
    "sma_cross": {"fast": [5, 10, 20, 40], "slow": [20, 30, 50, 100]},
    "rsi_reversion": {"window": [7, 14], "lower": [25.0, 30.0, 70.0], "upper": [60.0, 75.0]},
    "donchian_breakout": {"entry": [10, 20, 55], "exit": [5, 20]},
}
SMA = GRIDS["sma_cross"]

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """Two single-threaded worker processes on loopback; the scheduler's address."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as local:
        yield local.scheduler_address


@pytest.fixture(scope="module")
def registry() -> StrategyRegistry:
    return StrategyRegistry.discover([ROOT / "strategies"], entry_points=False)


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    """Settings with a private disk cache under tmp_path."""
    return load_config(paths=[], home=tmp_path,
                       environ={"TRADELAB__CACHE__DIR": str(tmp_path / "cache"),
                                "PATH": os.environ.get("PATH", "")})


_PLUGIN = '''
from pathlib import Path

from tradelab.errors import ParameterError
from tradelab.strategy.base import Param, Signals, Strategy
from tradelab.strategy.indicators import crossed_above, crossed_below, sma

MARKER = Path({marker!r})
MODE = {mode!r}


class Unreliable(Strategy):
    """sma_cross whose signals fail: once ("flaky", per marker file) or always."""

    name = "unreliable_sma"
    vectorized_params = True
    fast = Param(10, low=2, high=500)
    slow = Param(30, low=3, high=1000)

    def validate_params(self):
        if self.fast >= self.slow:
            raise ParameterError("fast must be smaller than slow")

    @property
    def warmup(self):
        return int(self.slow) + 1

    def signals(self, bars):
        if MODE == "always":
            raise ValueError("boom: this strategy always fails")
        try:
            MARKER.open("x").close()  # exclusive create: exactly one call ever fails
        except FileExistsError:
            pass
        else:
            raise RuntimeError("flaky: the first call fails")
        fast, slow = sma(bars["close"], self.fast), sma(bars["close"], self.slow)
        return Signals(crossed_above(fast, slow), crossed_below(fast, slow))
'''


def _plugin(tmp_path: Path, mode: str) -> type:
    """The Unreliable strategy loaded from a file, as tradelab_plugins.<unique stem>."""
    folder = tmp_path / "strategies"
    folder.mkdir()
    stem = f"unreliable_{mode}_{tmp_path.name.replace('-', '_')}"
    (folder / f"{stem}.py").write_text(textwrap.dedent(_PLUGIN.format(
        marker=str(tmp_path / "failed-once"), mode=mode)))
    cls = StrategyRegistry.discover([folder], entry_points=False).get("unreliable_sma")
    assert cls.__module__ == f"tradelab_plugins.{stem}"
    return cls


@pytest.mark.parametrize("name", list(GRIDS))
def test_distributed_table_equals_local(spx: pd.DataFrame, registry: StrategyRegistry,
                                        cluster: str, name: str) -> None:
    cls = registry.get(name)
    local = sweep(cls, spx, GRIDS[name], chunk_size=3, progress=False, fixed_fees=1.0)
    remote = sweep(cls, spx, GRIDS[name], chunk_size=3, progress=False, fixed_fees=1.0,
                   cluster=cluster)
    pd.testing.assert_frame_equal(remote.table, local.table, check_exact=True)
    assert remote.retried == [] and remote.symbols == []
    pd.testing.assert_frame_equal(remote.invalid, local.invalid)


def test_bars_ref_resolved_through_the_cache(registry: StrategyRegistry, cluster: str,
                                             settings: Settings) -> None:
    ref = BarsRef("sample", "SPX", start="2010-01-01")
    cls = registry.get("sma_cross")
    local = sweep(cls, ref, SMA, chunk_size=4, progress=False, settings=settings)
    remote = sweep(cls, ref, SMA, chunk_size=4, progress=False, settings=settings,
                   cluster=cluster)
    pd.testing.assert_frame_equal(remote.table, local.table, check_exact=True)
    assert "symbol" not in remote.table.columns
    assert remote.bars.index[0] >= pd.Timestamp("2010-01-01", tz="UTC")
    assert bars_digest(remote.bars) == bars_digest(local.bars)
    assert any((settings.home / "cache").rglob("*")), "the client warmed the disk cache"


def test_multi_symbol_sweep_is_one_table(registry: StrategyRegistry, cluster: str,
                                         settings: Settings) -> None:
    cls = registry.get("sma_cross")
    remote = sweep(cls, BarsRef("sample", "SPX"), SMA, symbols=["SPX", "IXIC"], chunk_size=5,
                   progress=False, settings=settings, cluster=cluster)
    assert remote.symbols == ["SPX", "IXIC"]
    assert list(remote.table.columns[:3]) == ["symbol", "fast", "slow"]
    local = sweep(cls, dict(remote.bars), SMA, chunk_size=5, progress=False)
    pd.testing.assert_frame_equal(remote.table, local.table, check_exact=True)
    for symbol in ("SPX", "IXIC"):
        one = sweep(cls, remote.bars[symbol], SMA, progress=False).table
        part = remote.table[remote.table["symbol"] == symbol].drop(columns="symbol")
        pd.testing.assert_frame_equal(part.reset_index(drop=True), one, check_exact=True)
    best = remote.backtest()
    assert best.stats["sharpe"] == pytest.approx(remote.best()["sharpe"], rel=1e-12)


def test_flaky_chunk_is_retried_and_reported(spx: pd.DataFrame, registry: StrategyRegistry,
                                             cluster: str, tmp_path: Path) -> None:
    cls = _plugin(tmp_path, "flaky")
    remote = sweep(cls, spx, SMA, chunk_size=3, progress=False, cluster=cluster, retries=2)
    expected = sweep(registry.get("sma_cross"), spx, SMA, chunk_size=3, progress=False)
    pd.testing.assert_frame_equal(remote.table, expected.table, check_exact=True)
    assert len(remote.retried) == 1
    retry = remote.retried[0]
    assert retry.attempts == 2 and retry.symbol is None
    assert retry.errors == ("RuntimeError: flaky: the first call fails",)
    chunks = remote.table[["fast", "slow"]].to_dict("records")[::3]
    assert retry.first == chunks[retry.chunk]
    assert remote.to_dict()["retried"][0]["attempts"] == 2


def test_failing_chunk_raises_naming_it(spx: pd.DataFrame, cluster: str,
                                        tmp_path: Path) -> None:
    cls = _plugin(tmp_path, "always")
    with pytest.raises(ChunkFailedError, match=r"first combination \{'fast': 5, 'slow': 20\}"
                                               r".* failed 2 time\(s\).*ValueError: boom"):
        sweep(cls, spx, SMA, chunk_size=100, progress=False, cluster=cluster, retries=1)


def test_local_cluster_string_and_bad_arguments(spx: pd.DataFrame,
                                                registry: StrategyRegistry) -> None:
    cls = registry.get("sma_cross")
    bars = spx.iloc[-800:]
    grid = {"fast": [5, 10], "slow": [20, 30]}
    remote = sweep(cls, bars, grid, chunk_size=2, progress=False, cluster="local", workers=1)
    local = sweep(cls, bars, grid, chunk_size=2, progress=False)
    pd.testing.assert_frame_equal(remote.table, local.table, check_exact=True)
    with pytest.raises(ValueError, match="retries"):
        sweep(cls, bars, grid, retries=-1, progress=False)
    with pytest.raises(TypeError, match="cluster"):
        sweep(cls, bars, grid, cluster=3.5, progress=False)
    with pytest.raises(TypeError, match="BarsRef"):
        sweep(cls, bars, grid, symbols=["SPX"], progress=False)


def test_cli_sweep_on_the_cluster(cluster: str, environ: dict[str, str]) -> None:
    import json

    from typer.testing import CliRunner

    import tradelab.cli.research_cmd  # noqa: F401  (registers the commands)
    from tradelab.cli._app import app

    args = ["sweep", "sma_cross", "-g", "fast=5,10", "-g", "slow=30,50", "--source", "sample",
            "--chunk-size", "2", "--json", "--top", "8"]
    runner = CliRunner()
    local = runner.invoke(app, [*args, "--symbols", "SPX,IXIC"], env=environ,
                          catch_exceptions=False)
    remote = runner.invoke(app, [*args, "--symbols", "SPX,IXIC", "--cluster", cluster],
                           env=environ, catch_exceptions=False)
    assert local.exit_code == 0 and remote.exit_code == 0, remote.output
    got, want = json.loads(remote.stdout), json.loads(local.stdout)
    assert got["symbols"] == ["SPX", "IXIC"] and got["rows"] == want["rows"]
