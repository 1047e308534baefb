"""The wire protocol: good bars parse exactly; each malformed kind is rejected with its reason."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from tradelab.feeds.protocol import REASONS, Rejected, encode_bar, parse_message
from tradelab.feeds.replay_server import MALFORMED, malformed_message
from tradelab.interfaces import Bar


def test_a_real_bar_round_trips_exactly(spx300: pd.DataFrame) -> None:
    t = spx300.index[7]
    o, h, low, c, v = spx300.iloc[7].tolist()
    kind, bar = parse_message(encode_bar("SPX", t, o, h, low, c, v))
    assert kind == "bar"
    assert bar == Bar("SPX", t.to_pydatetime(), o, h, low, c, v)
    assert bar.time.tzinfo is not None and bar.time.utcoffset().total_seconds() == 0


def test_other_zones_are_converted_to_utc() -> None:
    msg = json.loads(encode_bar("X", pd.Timestamp("2024-01-02", tz="UTC"), 2, 3, 1, 2, 5))
    msg["time"] = "2024-01-02T01:00:00+01:00"
    _, bar = parse_message(json.dumps(msg))
    assert bar.time == pd.Timestamp("2024-01-02", tz="UTC")


@pytest.mark.parametrize("kind", MALFORMED)
def test_each_injected_malformation_is_rejected_under_its_own_name(kind: str) -> None:
    good = json.loads(encode_bar("SPX", pd.Timestamp("2024-01-02", tz="UTC"), 2.0, 3.0, 1.0,
                                 2.5, 10.0))
    with pytest.raises(Rejected) as info:
        parse_message(malformed_message(kind, good))
    assert info.value.reason == kind
    assert kind in REASONS


@pytest.mark.parametrize(("change", "reason"), [
    ({"close": True}, "bad_type"),                       # a bool is not a price
    ({"time": "2024-01-02T00:00:00"}, "bad_time"),      # naive: zone unknown
    ({"time": 1704153600}, "bad_time"),
    ({"volume": -1.0}, "negative_volume"),
    ({"open": 3.5}, "open_close_range"),
    ({"symbol": ""}, "bad_type"),
])
def test_contract_rules(change: dict, reason: str) -> None:
    msg = {"type": "bar", "symbol": "X", "time": "2024-01-02T00:00:00+00:00", "open": 2.0,
           "high": 3.0, "low": 1.0, "close": 2.5, "volume": 10.0, **change}
    with pytest.raises(Rejected) as info:
        parse_message(json.dumps(msg))
    assert info.value.reason == reason


def test_control_messages_and_ticks() -> None:
    assert parse_message('{"type": "heartbeat"}')[0] == "heartbeat"
    kind, last = parse_message('{"type": "end", "last": {"A": "2024-01-02T00:00:00+00:00"}}')
    assert kind == "end" and last == {"A": pd.Timestamp("2024-01-02", tz="UTC")}
    kind, tick = parse_message('{"type": "tick", "symbol": "A", "time": '
                               '"2024-01-02T00:00:00+00:00", "price": 2.0, "size": 1}')
    assert kind == "tick" and tick[2:] == (2.0, 1.0)
    with pytest.raises(Rejected) as info:
        parse_message('{"type": "tick", "symbol": "A", "time": "2024-01-02T00:00:00+00:00", '
                      '"price": NaN, "size": 1}')
    assert info.value.reason == "nan"
    assert not math.isnan(tick[2])
