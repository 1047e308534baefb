"""validate_bars: every problem kind under every policy, on real bars with injected faults."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from tradelab.data.validate import KINDS, contract_problems, validate_bars
from tradelab.errors import DataValidationError

Corrupt = Callable[[pd.DataFrame], pd.DataFrame]
ROW = 10  # the row that gets corrupted


def _nan(df: pd.DataFrame) -> pd.DataFrame:
    df.iloc[ROW, df.columns.get_loc("close")] = np.nan
    return df


def _non_positive(df: pd.DataFrame) -> pd.DataFrame:
    df.iloc[ROW, df.columns.get_loc("low")] = 0.0
    return df


def _negative_volume(df: pd.DataFrame) -> pd.DataFrame:
    df.iloc[ROW, df.columns.get_loc("volume")] = -100.0
    return df


def _high_low(df: pd.DataFrame) -> pd.DataFrame:
    h, lo = df.iloc[ROW]["high"], df.iloc[ROW]["low"]
    df.iloc[ROW, df.columns.get_loc("high")] = lo
    df.iloc[ROW, df.columns.get_loc("low")] = h
    return df


def _open_close_range(df: pd.DataFrame) -> pd.DataFrame:
    df.iloc[ROW, df.columns.get_loc("open")] = df.iloc[ROW]["high"] * 1.01
    return df


def _duplicate(df: pd.DataFrame) -> pd.DataFrame:
    again = df.iloc[[ROW]].copy()
    again["close"] = again["low"]  # a later correction of the same bar, right after it
    return pd.concat([df.iloc[: ROW + 1], again, df.iloc[ROW + 1 :]])


def _out_of_order(df: pd.DataFrame) -> pd.DataFrame:
    order = list(range(len(df)))
    order[ROW], order[ROW + 1] = order[ROW + 1], order[ROW]
    return df.iloc[order]


CORRUPTIONS: dict[str, Corrupt] = {
    "nan": _nan, "non_positive": _non_positive, "negative_volume": _negative_volume,
    "high_low": _high_low, "open_close_range": _open_close_range,
    "duplicate": _duplicate, "out_of_order": _out_of_order,
}


def test_every_kind_has_a_corruption() -> None:
    assert set(CORRUPTIONS) == set(KINDS)


def test_clean_real_bars_pass_unchanged(orcl: pd.DataFrame) -> None:
    for policy in ("raise", "drop", "fill"):
        out, report = validate_bars(orcl, policy, source="file", symbol="ORCL")
        pd.testing.assert_frame_equal(out, orcl)
        assert report.ok and report.dropped == 0 and report.fixed == 0


@pytest.mark.parametrize("kind", KINDS)
def test_raise_names_source_symbol_kind_count_and_row(kind: str, orcl: pd.DataFrame) -> None:
    bad = CORRUPTIONS[kind](orcl.copy())
    stamp = orcl.index[ROW]  # after the swap, ROW's bar is the one that goes back in time
    with pytest.raises(DataValidationError) as info:
        validate_bars(bad, "raise", source="file", symbol="ORCL")
    message = str(info.value)
    assert "file:ORCL" in message
    assert f"({kind}): 1 row(s)" in message
    assert stamp.isoformat() in message
    assert info.value.report.counts[kind] == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", KINDS)
def test_drop_removes_exactly_the_offending_row(kind: str, orcl: pd.DataFrame) -> None:
    bad = CORRUPTIONS[kind](orcl.copy())
    out, report = validate_bars(bad, "drop", source="file", symbol="ORCL")
    assert contract_problems(out) == []
    assert report.counts[kind] == 1 and report.dropped == 1 and report.fixed == 0
    assert report.rows_in == len(bad) and report.rows_out == len(out)
    if kind == "duplicate":  # the later row of the two wins
        pd.testing.assert_frame_equal(out.drop(orcl.index[ROW]), orcl.drop(orcl.index[ROW]))
        assert out.loc[orcl.index[ROW], "close"] == orcl.iloc[ROW]["low"]
    else:  # for out_of_order: the row that went back in time goes
        pd.testing.assert_frame_equal(out, orcl.drop(orcl.index[ROW]))


def test_fill_takes_nan_close_from_previous_close(orcl: pd.DataFrame) -> None:
    out, report = validate_bars(_nan(orcl.copy()), "fill")
    prev_close = orcl.iloc[ROW - 1]["close"]
    row = out.iloc[ROW]
    assert row["close"] == prev_close
    assert row["low"] <= min(row["open"], prev_close) and row["high"] >= max(row["open"], prev_close)
    assert report.fixed == 1 and report.dropped == 0 and contract_problems(out) == []
    pd.testing.assert_frame_equal(out.drop(out.index[ROW]), orcl.drop(orcl.index[ROW]))


def test_fill_replaces_non_positive_low_and_widens(orcl: pd.DataFrame) -> None:
    out, report = validate_bars(_non_positive(orcl.copy()), "fill")
    original = orcl.iloc[ROW]
    expected_low = min(orcl.iloc[ROW - 1]["close"], original["open"], original["close"])
    assert out.iloc[ROW]["low"] == expected_low
    assert out.iloc[ROW]["high"] == original["high"]
    assert report.fixed == 1 and contract_problems(out) == []


def test_fill_drops_negative_volume_as_unrepairable(orcl: pd.DataFrame) -> None:
    out, report = validate_bars(_negative_volume(orcl.copy()), "fill")
    pd.testing.assert_frame_equal(out, orcl.drop(orcl.index[ROW]))
    assert report.dropped == 1 and report.fixed == 0


def test_fill_swaps_inverted_high_low_back(orcl: pd.DataFrame) -> None:
    out, report = validate_bars(_high_low(orcl.copy()), "fill")
    pd.testing.assert_frame_equal(out, orcl)
    assert report.fixed == 1 and report.counts["high_low"] == 1


def test_fill_widens_high_to_contain_open(orcl: pd.DataFrame) -> None:
    bad = _open_close_range(orcl.copy())
    out, report = validate_bars(bad, "fill")
    assert out.iloc[ROW]["high"] == bad.iloc[ROW]["open"]
    assert report.fixed == 1 and contract_problems(out) == []


def test_fill_keeps_the_last_duplicate(orcl: pd.DataFrame) -> None:
    out, report = validate_bars(_duplicate(orcl.copy()), "fill")
    assert len(out) == len(orcl) and report.dropped == 1
    assert out.loc[orcl.index[ROW], "close"] == orcl.iloc[ROW]["low"]


def test_fill_sorts_out_of_order_rows(orcl: pd.DataFrame) -> None:
    out, report = validate_bars(_out_of_order(orcl.copy()), "fill")
    pd.testing.assert_frame_equal(out, orcl)
    assert report.sorted and report.dropped == 0 and report.fixed == 0


def test_fill_drops_a_leading_nan_it_cannot_repair(orcl: pd.DataFrame) -> None:
    bad = orcl.copy()
    bad.iloc[0, 0] = np.nan
    out, report = validate_bars(bad, "fill")
    pd.testing.assert_frame_equal(out, orcl.iloc[1:])
    assert report.dropped == 1


def test_fill_sets_missing_volume_to_zero(orcl: pd.DataFrame) -> None:
    bad = orcl.copy()
    bad.iloc[ROW, 4] = np.nan
    out, report = validate_bars(bad, "fill")
    assert out.iloc[ROW]["volume"] == 0.0 and report.fixed == 1


@pytest.mark.parametrize("policy", ["raise", "drop", "fill"])
def test_missing_columns_always_raise_naming_them(policy: str, orcl: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match=r"file:ORCL are missing column\(s\) volume"):
        validate_bars(orcl.drop(columns="volume"), policy, source="file", symbol="ORCL")


@pytest.mark.parametrize("policy", ["raise", "drop", "fill"])
def test_gaps_are_reported_never_an_error(policy: str, orcl: pd.DataFrame) -> None:
    holed = orcl.drop(orcl.index[15:25])
    out, report = validate_bars(holed, policy)
    assert report.ok and report.gap_count == 1
    assert report.gaps[0].before == orcl.index[14] and report.gaps[0].after == orcl.index[25]
    assert len(out) == len(holed)
    assert "1 gap(s)" in str(report)


def test_weekends_are_not_gaps(orcl: pd.DataFrame) -> None:
    _, report = validate_bars(orcl, "raise")
    assert report.gap_count == 0


def test_text_values_like_yahoo_null_count_as_nan(fixtures, orcl: pd.DataFrame) -> None:
    raw = pd.read_csv(fixtures / "orcl-2014-yahoo.csv", dtype=str)
    raw.loc[ROW, ["Open", "High", "Low", "Close", "Adj Close", "Volume"]] = "null"
    from tradelab.data.bars import normalize_frame

    _, report = validate_bars(normalize_frame(raw), "drop")
    assert report.counts["nan"] == 1 and report.dropped == 1


def test_report_str_is_readable(orcl: pd.DataFrame) -> None:
    bad = _nan(_high_low(orcl.copy()))
    _, report = validate_bars(bad, "drop", source="file", symbol="ORCL")
    text = str(report)
    assert text.splitlines()[0].startswith("validation of file:ORCL (policy drop)")
    assert "NaN/inf value (nan): 1 row(s)" in text
    assert "high < low (high_low): 1 row(s)" in text
    assert "1 row(s) dropped, 0 row(s) fixed" in text
    assert not report.ok and report.problems() == {"nan": 1, "high_low": 1}


def test_examples_are_capped_at_five(orcl: pd.DataFrame) -> None:
    bad = orcl.copy()
    bad.iloc[:8, 3] = np.nan
    _, report = validate_bars(bad, "drop")
    assert report.counts["nan"] == 8 and len(report.examples["nan"]) == 5
    assert report.examples["nan"][0].time == orcl.index[0]


def test_naive_and_foreign_zone_indexes_become_utc(orcl: pd.DataFrame) -> None:
    naive = orcl.tz_convert(None)
    out, _ = validate_bars(naive)
    assert str(out.index.tz) == "UTC" and out.index.name == "time"
    ny = orcl.tz_convert("America/New_York")
    out, _ = validate_bars(ny)
    assert (out.index == orcl.index).all()


def test_unknown_policy_is_refused(orcl: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="policy='repair'"):
        validate_bars(orcl, "repair")
