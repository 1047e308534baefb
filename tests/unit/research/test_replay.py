"""Equity and position replayed from the order records equal vectorbt's, bit for bit."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradelab.research._replay import _ABS_TOL, _REL_TOL, add, equity_and_position, replay
from tradelab.research.backtest import backtest


def _bits(a: np.ndarray) -> bytes:
    # (bit for bit: -0.0 differs from 0.0, NaN payloads count)
    return np.ascontiguousarray(a, dtype=np.float64).tobytes()


def _vectorbt(records: np.ndarray, close: np.ndarray, init_cash: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """vectorbt's own kernels, as ``pf.value()`` and ``pf.assets()`` chain them."""
    import vectorbt.portfolio.nb as nb
    from vectorbt.portfolio.enums import Direction
    from vectorbt.records.nb import col_map_nb

    shape = (close.shape[0], 1)
    col_map = col_map_nb(records["col"], 1)
    assets = nb.assets_nb(nb.asset_flow_nb(shape, records, col_map, Direction.Both))
    cash = nb.cash_nb(nb.cash_flow_nb(shape, records, col_map, False),
                      np.array([init_cash]))
    priced = close.reshape(-1, 1).copy()
    priced[assets == 0] = 0.0  # (vectorbt's asset_value)
    value = nb.value_nb(cash, nb.asset_value_nb(priced, assets))
    return value[:, 0], assets[:, 0]


def test_tolerances_are_vectorbts() -> None:
    from vectorbt.utils import math_

    assert (math_.rel_tol, math_.abs_tol) == (_REL_TOL, _ABS_TOL)


_SPECIAL = st.sampled_from([0.0, -0.0, 1e-12, -1e-12, 5e-13, 2e-12, 1.0, -1.0, 1e9, 1e9 + 1,
                            math.nan, math.inf, -math.inf])
_FLOATS = st.one_of(_SPECIAL, st.floats(allow_nan=True, allow_infinity=True, width=64))


@given(_FLOATS, _FLOATS)
@settings(max_examples=400, deadline=None)
def test_add_is_vectorbts_add_nb(a: float, b: float) -> None:
    from vectorbt.utils.math_ import add_nb

    assert _bits(np.array([add(a, b)])) == _bits(np.array([add_nb(a, b)]))


# Orders whose sizes cancel or nearly cancel (add_nb's snapping), several per bar.
_SIZES = st.one_of(st.sampled_from([1.0, 3.0, 0.1, 0.2, 0.3, 1e-13, 1 + 1e-10]),
                   st.floats(min_value=1e-6, max_value=1e4))
_ORDER = st.tuples(st.integers(0, 29), st.integers(0, 1), _SIZES,
                   st.floats(min_value=0.01, max_value=1e4), st.floats(min_value=0.0, max_value=5.0))


@given(orders=st.lists(_ORDER, max_size=25),
       close=st.lists(st.floats(min_value=0.01, max_value=1e5), min_size=30, max_size=30),
       init_cash=st.sampled_from([100_000.0, 1.0, 0.1 + 0.2]))
@settings(max_examples=200, deadline=None)
def test_replay_is_vectorbts_value_and_assets_bit_for_bit(
        orders: list[tuple[int, int, float, float, float]], close: list[float],
        init_cash: float) -> None:
    from vectorbt.portfolio.enums import order_dt

    orders = sorted(orders, key=lambda o: o[0])  # (a column's records run in time)
    records = np.array([(k, 0, i, size, price, fees, side)
                        for k, (i, side, size, price, fees) in enumerate(orders)],
                       dtype=order_dt)
    prices = np.array(close)
    equity, position = replay(records, prices, init_cash)
    value, assets = _vectorbt(records, prices, init_cash)
    assert _bits(position) == _bits(assets)
    assert _bits(equity) == _bits(value)


@pytest.mark.parametrize(("strategy", "options"), [
    ("sma_cross", {}),
    ("sma_cross", {"direction": "both", "sl": 0.03, "tp": 0.05, "fees": 0.001,
                   "fixed_fees": 1.0}),
    ("rsi_reversion", {"fractional": True, "slippage": 0.0005}),
    ("donchian_breakout", {"direction": "short", "trail": 0.04}),
])
def test_a_backtests_equity_and_position_are_vectorbts(
        bars: pd.DataFrame, strategy: str, options: dict[str, object]) -> None:
    result = backtest(strategy, bars, **options)  # type: ignore[arg-type]
    pf = result.portfolio
    assert len(result.orders) > 0
    assert _bits(result.equity.to_numpy()) == _bits(np.asarray(pf.value(), dtype=float))
    assert _bits(result.position.to_numpy()) == _bits(np.asarray(pf.assets(), dtype=float))


def test_a_close_with_nan_is_left_to_vectorbt() -> None:
    import vectorbt as vbt

    close = pd.Series([10.0, 11.0, np.nan, 12.0, 13.0, 12.5],
                      index=pd.date_range("2024-01-01", periods=6, tz="UTC"))
    entries = pd.Series([True, False, False, False, False, False], index=close.index)
    exits = pd.Series([False, False, False, True, False, False], index=close.index)
    pf = vbt.Portfolio.from_signals(close, entries, exits, init_cash=1_000.0, size=10.0)
    equity, position = equity_and_position(pf, 1_000.0)
    assert _bits(equity) == _bits(np.asarray(pf.value(), dtype=float))
    assert _bits(position) == _bits(np.asarray(pf.assets(), dtype=float))
    assert np.isfinite(equity).all()  # vectorbt forward-filled the close


def test_a_cli_backtest_loads_none_of_vectorbts_value_kernels() -> None:
    code = textwrap.dedent("""
        import json, sys
        from tradelab.cli import main
        sys.argv = ["tradelab", "backtest", "sma_cross"]
        try:
            main()
        except SystemExit as e:
            code = e.code
        import vectorbt.portfolio.nb as nb
        names = ("asset_flow_nb", "assets_nb", "cash_flow_nb", "cash_nb", "init_cash_nb",
                 "asset_value_nb", "value_nb", "simulate_from_signals_nb")
        print(json.dumps({"code": code,
                          "loaded": {n: len(getattr(nb, n).signatures) for n in names}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["code"] == 0
    loaded = got["loaded"]
    assert loaded.pop("simulate_from_signals_nb") == 1  # (the simulation did run)
    assert loaded == dict.fromkeys(loaded, 0)
