"""FileSource and normalize_frame on real Yahoo, Quandl and index files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradelab.data.bars import BAR_COLUMNS, normalize_frame
from tradelab.data.files import FileSource
from tradelab.data.validate import contract_problems
from tradelab.errors import DataSourceError


@pytest.fixture()
def root(tmp_path: Path, fixtures: Path) -> Path:
    shutil.copy(fixtures / "orcl-2014-yahoo.csv", tmp_path / "ORCL.csv")
    shutil.copy(fixtures / "wiki-orcl-2000-quandl.csv", tmp_path / "ORCL2000.csv")
    shutil.copy(fixtures / "index-2006-day.csv", tmp_path / "IDX.csv")
    return tmp_path


def test_yahoo_csv_ascending_raw(root: Path, fixtures: Path) -> None:
    bars = FileSource(root).load("ORCL")
    raw = pd.read_csv(fixtures / "orcl-2014-yahoo.csv")
    assert contract_problems(bars) == []
    assert len(bars) == 42
    assert bars.index[0] == pd.Timestamp("2014-01-02", tz="UTC")
    np.testing.assert_array_equal(bars["close"].to_numpy(), raw["Close"].to_numpy())
    np.testing.assert_array_equal(bars["volume"].to_numpy(), raw["Volume"].to_numpy())


def test_yahoo_csv_adjusted_scales_ohlc_by_adj_close(root: Path, fixtures: Path) -> None:
    raw = pd.read_csv(fixtures / "orcl-2014-yahoo.csv")
    bars = FileSource(root, adjust="adjusted").load("ORCL")
    factor = raw["Adj Close"] / raw["Close"]
    np.testing.assert_allclose(bars["close"].to_numpy(), raw["Adj Close"].to_numpy())
    np.testing.assert_allclose(bars["open"].to_numpy(), (raw["Open"] * factor).to_numpy())
    np.testing.assert_array_equal(bars["volume"].to_numpy(), raw["Volume"].to_numpy())
    assert (bars["close"] < FileSource(root).load("ORCL")["close"]).all()  # dividends paid


def test_per_call_adjust_overrides_the_source_default(root: Path) -> None:
    src = FileSource(root, adjust="raw")
    assert not src.load("ORCL", adjust="adjusted").equals(src.load("ORCL"))


def test_quandl_descending_file_is_reversed(root: Path, fixtures: Path) -> None:
    bars = FileSource(root).load("ORCL2000")
    raw = pd.read_csv(fixtures / "wiki-orcl-2000-quandl.csv")
    assert contract_problems(bars) == []
    assert bars.index[0] == pd.Timestamp("2000-12-01", tz="UTC")
    assert bars.index[-1] == pd.Timestamp("2000-12-29", tz="UTC")
    np.testing.assert_array_equal(bars["close"].to_numpy(), raw["Close"].to_numpy()[::-1])


def test_quandl_adjusted_matches_quandls_own_adjusted_columns(root: Path, fixtures: Path) -> None:
    bars = FileSource(root, adjust="adjusted").load("ORCL2000")
    raw = pd.read_csv(fixtures / "wiki-orcl-2000-quandl.csv").iloc[::-1]
    for ours, theirs in [("open", "Adj. Open"), ("high", "Adj. High"), ("low", "Adj. Low"),
                         ("close", "Adj. Close")]:
        np.testing.assert_allclose(bars[ours].to_numpy(), raw[theirs].to_numpy(), rtol=1e-9)


def test_file_without_adj_close_loads_raw_and_refuses_adjusted(root: Path) -> None:
    src = FileSource(root)
    bars = src.load("IDX")
    assert tuple(bars.columns) == BAR_COLUMNS  # OpenInterest dropped
    assert len(bars) == 40
    with pytest.raises(DataSourceError, match=r"IDX.csv: adjust='adjusted' needs .*Adj Close"):
        src.load("IDX", adjust="adjusted")


def test_parquet_contract_frame_round_trips(root: Path) -> None:
    bars = FileSource(root).load("ORCL")
    bars.to_parquet(root / "PQ.parquet")
    pd.testing.assert_frame_equal(FileSource(root).load("PQ"), bars, check_freq=False)


def test_parquet_in_yahoo_layout(root: Path, fixtures: Path) -> None:
    raw = pd.read_csv(fixtures / "orcl-2014-yahoo.csv", parse_dates=["Date"])
    raw.to_parquet(root / "YPQ.parquet", index=False)
    pd.testing.assert_frame_equal(FileSource(root).load("YPQ", adjust="adjusted"),
                                  FileSource(root).load("ORCL", adjust="adjusted"))


def test_csv_is_preferred_and_symbol_may_be_a_path(root: Path, tmp_path: Path) -> None:
    src = FileSource(tmp_path / "elsewhere")
    bars = src.load(str(root / "ORCL.csv"))
    assert len(bars) == 42


def test_start_end_are_inclusive(root: Path) -> None:
    bars = FileSource(root).load("ORCL", start="2014-01-03", end="2014-01-08")
    assert list(bars.index.strftime("%m-%d")) == ["01-03", "01-06", "01-07", "01-08"]


def test_missing_file_names_every_path_tried(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError) as info:
        FileSource(tmp_path).load("NOPE")
    message = str(info.value)
    for suffix in (".csv", ".parquet", ".pq"):
        assert str(tmp_path / f"NOPE{suffix}") in message
    with pytest.raises(DataSourceError, match="NOPE"):
        FileSource(tmp_path).fingerprint("NOPE")


def test_fingerprint_changes_when_the_file_is_rewritten(root: Path) -> None:
    src = FileSource(root)
    before = src.fingerprint("ORCL")
    assert src.fingerprint("ORCL") == before
    path = root / "ORCL.csv"
    path.write_text(path.read_text())  # same bytes, new mtime
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert src.fingerprint("ORCL") != before


def test_interval_mismatch_is_refused(root: Path) -> None:
    with pytest.raises(DataSourceError, match=r"about 1 days.*not interval '1h'"):
        FileSource(root).load("ORCL", interval="1h")
    assert len(FileSource(root).load("ORCL", interval="1d")) == 42


def test_symbols_lists_files(root: Path, tmp_path: Path) -> None:
    assert FileSource(root).symbols() == ["IDX", "ORCL", "ORCL2000"]
    assert FileSource(tmp_path / "missing").symbols() == []


# --- normalize_frame -------------------------------------------------------------


def test_normalize_maps_spellings_and_case() -> None:
    df = pd.DataFrame({"DATE": ["2020-01-02", "2020-01-03"], "OPEN": ["1", "2"],
                       "High": [2, 3], "low": [0.5, 1.5], "Close": [1.5, 2.5],
                       "adj_close": [1.5, 2.5], "Vol": [10, 20]})
    out = normalize_frame(df)
    assert tuple(out.columns) == BAR_COLUMNS
    assert all(str(t) == "float64" for t in out.dtypes)
    assert out.index.name == "time" and str(out.index.tz) == "UTC"


def test_normalize_converts_other_zones_to_utc() -> None:
    idx = pd.DatetimeIndex(["2020-03-06 09:30", "2020-03-09 09:30"], tz="America/New_York")
    df = pd.DataFrame({"Open": [1.0, 2.0]}, index=idx)
    out = normalize_frame(df)
    assert list(out.index.hour) == [14, 13]  # EST then EDT


def test_normalize_keeps_partial_disorder_for_validation() -> None:
    df = pd.DataFrame({"Date": ["2020-01-03", "2020-01-02", "2020-01-06"], "Close": [1, 2, 3]})
    out = normalize_frame(df)
    assert list(out["close"]) == [1, 2, 3]


def test_normalize_rejects_unknown_adjust() -> None:
    with pytest.raises(DataSourceError, match="adjust='split'"):
        normalize_frame(pd.DataFrame({"Close": [1.0]}), "split")
