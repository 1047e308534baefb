"""records_frame: store records as DataFrames, money as float (or exact), secrets left out."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tradelab.records import records_frame
from tradelab.store.auth_repo import UserRecord
from tradelab.store.records import EquityPoint


def _points() -> list[EquityPoint]:
    t0, t1 = datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 3, tzinfo=UTC)
    return [EquityPoint(t0, 1, Decimal("100000.00"), Decimal("0"), Decimal("100000.00"), Decimal("0")),
            EquityPoint(t1, 1, Decimal("90000.10"), Decimal("10500.25"), Decimal("100500.35"),
                        Decimal("-0.01"))]


def test_decimal_columns_become_float_and_the_index_is_a_field() -> None:
    frame = records_frame(_points(), index="at")
    assert list(frame.columns) == ["run_id", "cash", "positions_value", "equity", "drawdown"]
    assert frame["equity"].dtype == float and frame["equity"].iloc[1] == 100500.35
    assert frame.index[1] == datetime(2024, 1, 3, tzinfo=UTC)


def test_exact_keeps_decimals() -> None:
    frame = records_frame(_points(), exact=True)
    assert frame["equity"].iloc[1] == Decimal("100500.35")


def test_secret_fields_are_left_out() -> None:
    now = datetime(2024, 1, 2, tzinfo=UTC)
    user = UserRecord(1, "ann", "trader", False, True, now, now, "$argon2id$v=19$xyz", "JBSWY3DP", 7)
    frame = records_frame([user])
    assert "password_hash" not in frame.columns and "totp_secret" not in frame.columns
    assert "$argon2id" not in frame.to_string() and frame["username"].tolist() == ["ann"]


def test_empty_records_need_their_type_and_bad_input_is_named() -> None:
    empty = records_frame([], index="at", record_type=EquityPoint)
    assert len(empty) == 0 and list(empty.columns) == ["run_id", "cash", "positions_value", "equity",
                                                       "drawdown"]
    with pytest.raises(TypeError, match="no record_type"):
        records_frame([])
    with pytest.raises(ValueError, match="index 'when' is not a field of EquityPoint"):
        records_frame(_points(), index="when")
    with pytest.raises(TypeError, match="is not a dataclass record"):
        records_frame([{"a": 1}])


def test_a_paper_run_as_frames(tmp_path: Path, environ: dict[str, str], project_root: Path) -> None:
    from tradelab.app import build
    from tradelab.config import load_config

    tl = build(load_config(environ=environ, home=project_root))
    store = tl.open_store(f"sqlite:///{tmp_path / 's.db'}")
    try:
        engine = tl.engine("sma_cross", "SPX", source="sample", start="2017-01-01", end="2017-12-31",
                           store=store, account="frames")
        run_id = int(engine.run().run_id)
        curve = records_frame(store.equity_curve("frames", run_id), index="at")
        fills = records_frame(store.fills("frames", run_id))
        stored = store.equity_curve("frames", run_id)
    finally:
        store.close()
    assert len(curve) == len(stored) > 200 and curve["equity"].dtype == float
    assert curve["equity"].iloc[-1] == float(stored[-1].equity)
    assert len(fills) > 0 and fills["quantity"].dtype == float


def test_shipped_notebooks_use_the_helper_not_hand_built_frames(project_root: Path) -> None:
    import json

    sources = {nb.name: "".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"])
               for nb in sorted((project_root / "notebooks").glob("*.ipynb"))}
    assert not [name for name, src in sources.items() if "asdict(" in src]
    assert "records_frame(store.equity_curve(" in sources["02_paper_trading.ipynb"]
