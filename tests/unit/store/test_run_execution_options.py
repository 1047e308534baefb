"""A run stores its execution convention (migration 0010), exactly, on both backends."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, fields
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tradelab.execution import Execution
from tradelab.store import Store
from tradelab.store.records import EXECUTION_OPTIONS, execution_column

T0 = datetime(2024, 3, 1, tzinfo=UTC)
#: Floats whose shortest repr is long or unusual: any rounding on the way would show.
EX = Execution(cash=12_345.67, fees=0.1 + 0.2, fixed_fees=1e-17, slippage=0.0005, size=10.0,
               size_type="amount", fill="close", fractional=True, borrow_fee=0.05)


def test_the_stored_options_are_the_fields_of_execution() -> None:
    assert tuple(f.name for f in fields(Execution)) == EXECUTION_OPTIONS


def test_an_old_run_keeps_null_and_a_new_run_reads_back_exact_values(store_url: str) -> None:
    store = Store(store_url)
    store.upgrade("0009_run_trade_options")
    with store.engine.begin() as conn:  # a run started before 0010, written as 0009 did
        conn.execute(text("INSERT INTO accounts (id, name, currency, initial_cash, cash) "
                          "VALUES (1, 'a', 'USD', 100, 100)"))
        conn.execute(text(
            "INSERT INTO runs (account_id, strategy, params, source, symbol, mode, status, "
            "started_at, direction) VALUES (1, 'sma_cross', '{}', 'sample', 'SPX', 'paper', "
            "'failed', '2024-01-01 00:00:00', 'long')"))
    store.upgrade()
    (old,) = store.runs("a")
    assert old.execution is None and old.trade() is not None
    with store.transaction() as tx:
        run_id = tx.start_run("a", "sma_cross", symbol="SPX", source="sample", mode="paper",
                              started_at=T0, execution=asdict(EX))
    run = store.get_run(run_id)
    assert run is not None and run.execution == asdict(EX)
    assert Execution(**run.execution) == EX
    assert run.execution["fees"] == 0.30000000000000004 and run.execution["fractional"] is True
    column = "execution" if store.engine.dialect.name == "sqlite" else "execution::text"
    with store.engine.connect() as conn:  # the text kept is the float's shortest repr
        raw = conn.execute(text(f"SELECT {column} FROM runs WHERE id = :id"), {"id": run_id}).scalar()
    assert "0.30000000000000004" in str(raw) and "1e-17" in str(raw)
    store.close()


def test_bad_options_are_one_clear_error(store: Store) -> None:
    with store.transaction() as tx:
        tx.ensure_account("a", Decimal(100))
    with pytest.raises(ValueError, match=r"^execution = \['fee'\]: unknown execution options"), \
            store.transaction() as tx:
        tx.start_run("a", "x", symbol="X", source="s", mode="paper", started_at=T0,
                     execution={"fee": 0.1})
    with pytest.raises(ValueError, match=r"^execution fixed_fees = inf: a stored run needs a finite"):
        execution_column(asdict(Execution(fixed_fees=math.inf)))
    assert store.runs("a") == []


@pytest.fixture(scope="module")
def memory_store() -> Iterator[Store]:
    s = Store("sqlite://")
    s.upgrade()
    with s.transaction() as tx:
        tx.ensure_account("a", Decimal(100))
    yield s
    s.close()


_rate = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


@settings(max_examples=60, deadline=None)
@given(cash=st.floats(min_value=1e-300, max_value=1e300), fees=_rate, slippage=_rate,
       fixed=st.floats(min_value=0.0, max_value=1e300), size=st.floats(min_value=1e-300, max_value=1e300),
       borrow=st.floats(min_value=0.0, max_value=1e300))
def test_any_convention_round_trips_bit_for_bit(memory_store: Store, cash: float, fees: float,
                                                slippage: float, fixed: float, size: float,
                                                borrow: float) -> None:
    ex = Execution(cash=cash, fees=fees, fixed_fees=fixed, slippage=slippage, size=size,
                   size_type="value", borrow_fee=borrow)
    with memory_store.transaction() as tx:
        run_id = tx.start_run("a", "x", symbol="X", source="s", mode="paper", started_at=T0,
                              execution=asdict(ex))
    stored = memory_store.get_run(run_id).execution
    assert Execution(**stored) == ex
    floats = ("cash", "fees", "fixed_fees", "slippage", "size", "borrow_fee")
    assert [float(stored[k]).hex() for k in floats] == [getattr(ex, k).hex() for k in floats]
