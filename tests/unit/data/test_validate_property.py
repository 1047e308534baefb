"""Hypothesis: after drop/fill the output satisfies the contract and the report adds up."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tradelab.data.bars import BAR_COLUMNS
from tradelab.data.validate import contract_problems, validate_bars

# Mostly sane prices, with every kind of bad value mixed in.
price = st.one_of(
    st.floats(1.0, 200.0),
    st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -5.0]),
)
volume = st.one_of(st.floats(0.0, 1e7), st.sampled_from([np.nan, -1.0]))
row = st.tuples(st.integers(0, 25), price, price, price, price, volume)


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(st.lists(row, min_size=0, max_size=40))
    # Days drawn from a small range give duplicates and disorder often.
    index = pd.DatetimeIndex([pd.Timestamp("2020-01-01", tz="UTC") + pd.Timedelta(days=d)
                              for d, *_ in rows], name="time")
    data = np.array([r[1:] for r in rows], dtype="float64").reshape(len(rows), 5)
    return pd.DataFrame(data, index=index, columns=list(BAR_COLUMNS))


def _last_input_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[~df.index.duplicated(keep="last")]


@settings(max_examples=300, deadline=None)
@given(frames())
def test_drop_output_is_contract_and_every_removal_is_counted(df: pd.DataFrame) -> None:
    out, report = validate_bars(df, "drop")
    assert contract_problems(out) == []
    assert report.rows_in == len(df) and report.rows_out == len(out)
    assert report.dropped == len(df) - len(out)
    assert report.fixed == 0
    # drop never invents values: every output row is an input row, unchanged
    for ts, values in out.iterrows():
        candidates = df.loc[[ts]].to_numpy()
        assert (candidates == values.to_numpy()).all(axis=1).any()
    if report.ok:
        assert len(out) == len(df)


@settings(max_examples=300, deadline=None)
@given(frames())
def test_fill_output_is_contract_and_every_change_is_counted(df: pd.DataFrame) -> None:
    out, report = validate_bars(df, "fill")
    assert contract_problems(out) == []
    assert report.dropped == len(df) - len(out)
    assert set(out.index) <= set(df.index)
    kept = _last_input_rows(df).loc[out.index]
    before, after = kept.to_numpy(), out.to_numpy()
    changed = ~((before == after) | (np.isnan(before) & np.isnan(after))).all(axis=1)
    assert report.fixed == int(changed.sum())
    if report.ok:
        assert report.dropped == 0 and report.fixed == 0


@settings(max_examples=200, deadline=None)
@given(frames())
def test_counts_do_not_depend_on_policy(df: pd.DataFrame) -> None:
    _, drop = validate_bars(df, "drop")
    _, fill = validate_bars(df, "fill")
    assert dict(drop.counts) == dict(fill.counts)
