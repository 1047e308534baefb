from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradelab.errors import ParameterError
from tradelab.strategy.base import Param, Signals, Strategy
from tradelab.testing import make_bars


class Threshold(Strategy):
    name = "threshold"
    level = Param(100.0, low=0.0, doc="price level")
    window = Param(3, low=1, high=50)
    enabled = Param(True)

    @property
    def warmup(self) -> int:
        return int(self.window)

    def signals(self, bars: pd.DataFrame) -> Signals:
        above = bars["close"] > self.level
        return Signals(above & self.enabled, ~above)


def test_params_have_defaults_types_and_bounds() -> None:
    s = Threshold()
    assert s.params == {"level": 100.0, "window": 3, "enabled": True}
    specs = {p.name: p for p in Threshold.param_specs()}
    assert specs["window"].kind == "int" and specs["window"].high == 50
    assert Threshold(level="101.5", window="7", enabled="false").params == {
        "level": 101.5, "window": 7, "enabled": False}


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"window": 0}, "threshold.window = 0: must be >= 1"),
    ({"window": 2.5}, "threshold.window = 2.5: expected int"),
    ({"level": "abc"}, "threshold.level = 'abc': expected float"),
    ({"level": float("nan")}, "expected float"),
    ({"enabled": "maybe"}, "threshold.enabled = 'maybe': expected bool"),
    ({"colour": 1}, "unknown parameter(s) colour; known: level, window, enabled"),
])
def test_bad_params_name_the_field_and_value(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ParameterError) as err:
        Threshold(**kwargs)
    assert fragment in str(err.value)


def test_generate_aligns_booleans_and_masks_warmup() -> None:
    bars = make_bars(20)
    sig = Threshold(level=0.0, window=5).generate(bars)
    assert sig.entries.dtype == bool and sig.entries.index.equals(bars.index)
    assert not sig.entries.iloc[:4].any()
    assert sig.entries.iloc[4:].all()


def test_batch_validates_every_combination_and_splits_back() -> None:
    batch = Threshold.batch({"level": [1.0, 2.0, 3.0], "window": [2, 3, 4]})
    singles = list(batch.split())
    assert [s.params["window"] for s in singles] == [2, 3, 4]
    assert batch.max_warmup() == 4
    with pytest.raises(ParameterError, match="window = 0"):
        Threshold.batch({"window": [1, 0]})
    with pytest.raises(ParameterError, match="differ in length"):
        Threshold.batch({"window": [1, 2], "level": [1.0]})


def test_wrong_length_signals_are_rejected() -> None:
    class Broken(Threshold):
        name = "broken"

        def signals(self, bars: pd.DataFrame) -> Signals:
            return Signals(np.zeros(len(bars) - 1, bool), np.zeros(len(bars) - 1, bool))

    with pytest.raises(ValueError, match="length 9 for 10 bars"):
        Broken().generate(make_bars(10))


def test_a_strategy_without_signals_cannot_be_created() -> None:
    class NoSignals(Strategy):
        name = "no_signals"

    with pytest.raises(TypeError, match="abstract"):
        NoSignals()
