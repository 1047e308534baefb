"""Exact decimals and aware UTC datetimes on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text

from tradelab.store import Store, create_store_engine
from tradelab.store.types import Amount, UTCDateTime, to_amount, to_utc

# SQLAlchemy warns when Numeric is used on SQLite; Amount must never trigger it.
pytestmark = pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")

EXACT = st.decimals(min_value=Decimal("-999999999999999999.9999999999"),
                    max_value=Decimal("999999999999999999.9999999999"),
                    places=10, allow_nan=False, allow_infinity=False)
ANY_IN_RANGE = st.decimals(min_value=Decimal("-99999999999999999"),
                           max_value=Decimal("99999999999999999"),
                           allow_nan=False, allow_infinity=False)
AWARE = st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1),
                     timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                                timezone(timedelta(hours=-8))]))
PER_BACKEND = settings(max_examples=150, deadline=None,
                       suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_to_amount_rounds_half_to_even_like_the_engine() -> None:
    assert to_amount(Decimal("0.00000000005")) == 0
    assert to_amount(Decimal("0.00000000015")) == Decimal("0.0000000002")
    assert to_amount(Decimal("-0.00000000025")) == Decimal("-0.0000000002")
    assert to_amount(Decimal("0.00000000004")) == 0
    assert str(to_amount(Decimal("-0.00000000001"))) == "0E-10"  # no negative zero
    assert to_amount(7) == Decimal("7.0000000000")
    assert to_amount("1.25") == Decimal("1.25")


@pytest.mark.parametrize("bad", [0.1, True, None, [1]])
def test_to_amount_refuses_non_decimals(bad: object) -> None:
    with pytest.raises(TypeError):
        to_amount(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity"), Decimal("1e18"), "abc",
                                 Decimal("999999999999999999.99999999999")])
def test_to_amount_refuses_values_numeric_28_10_cannot_hold(bad: object) -> None:
    with pytest.raises(ValueError):
        to_amount(bad)  # type: ignore[arg-type]


def test_to_utc_refuses_naive_and_converts_aware() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_utc(datetime(2024, 1, 1))
    ist = datetime(2024, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert to_utc(ist) == datetime(2024, 1, 1, tzinfo=UTC)
    assert to_utc(ist).tzinfo is UTC


@pytest.fixture()
def scratch(store_url: str):  # type: ignore[no-untyped-def]
    """A one-table database using the store's column types directly."""
    meta = MetaData()
    table = Table("scratch", meta, Column("id", Integer, primary_key=True),
                  Column("amount", Amount()), Column("at", UTCDateTime()))
    engine = create_store_engine(store_url)
    meta.create_all(engine)
    yield engine, table
    engine.dispose()


def _roundtrip(scratch, **values):  # type: ignore[no-untyped-def]
    engine, table = scratch
    with engine.begin() as conn:
        pk = conn.execute(insert(table).values(**values)).inserted_primary_key[0]
        return conn.execute(select(table).where(table.c.id == pk)).one()


@PER_BACKEND
@given(value=EXACT)
def test_decimals_with_up_to_10_places_round_trip_exactly(scratch, value: Decimal) -> None:  # type: ignore[no-untyped-def]
    row = _roundtrip(scratch, amount=value)
    assert isinstance(row.amount, Decimal)
    assert row.amount == value


@PER_BACKEND
@given(value=ANY_IN_RANGE)
def test_longer_decimals_come_back_rounded_identically_on_both_backends(  # type: ignore[no-untyped-def]
        scratch, value: Decimal) -> None:
    assert _roundtrip(scratch, amount=value).amount == to_amount(value)


@PER_BACKEND
@given(value=AWARE)
def test_aware_datetimes_come_back_as_the_same_instant_in_utc(scratch, value: datetime) -> None:  # type: ignore[no-untyped-def]
    got = _roundtrip(scratch, at=value).at
    assert got == value
    assert got.tzinfo is UTC


def test_naive_datetimes_are_refused_by_the_column(scratch) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Exception, match="naive"):
        _roundtrip(scratch, at=datetime(2024, 1, 1))


def test_sqlite_stores_amounts_as_text_not_float(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    store.upgrade()
    with store.transaction() as tx:
        tx.ensure_account("a", Decimal("0.1000000000000000055511151231257827"))
    with store.engine.connect() as conn:
        raw, kind = conn.execute(text("SELECT cash, typeof(cash) FROM accounts")).one()
    assert (raw, kind) == ("0.1000000000", "text")
    store.close()


@PER_BACKEND
@given(value=EXACT)
def test_cash_round_trips_through_the_store_api(store, value: Decimal) -> None:  # type: ignore[no-untyped-def]
    with store.transaction() as tx:
        tx.ensure_account("acct", Decimal(0))
        tx.set_cash("acct", value)
    assert store.get_account("acct").cash == value
