"""Golden results of the long/short strategy with its ATR stop on SPX: the default
convention (percent sizing: an opposite entry closes) and value sizing (one order
reverses). Stored and compared like :mod:`tests.integration.test_golden`; rewrite with
``pytest tests/integration/test_golden_long_short.py --update-golden``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.test_golden import GOLDEN, _compare
from tradelab.research.backtest import backtest

CASES: dict[str, dict[str, Any]] = {
    "sma_cross_ls": {},
    "sma_cross_ls_value": {"size_type": "value", "size": 50_000.0},
}


@pytest.mark.parametrize("case", list(CASES))
def test_golden_long_short(spx, registry, request: pytest.FixtureRequest, case: str) -> None:
    result = backtest(registry.create("sma_cross_ls"), spx, **CASES[case])
    got = {k: v for k, v in result.to_dict().items() if k != "orders"}
    # the run must exercise what this file guards: both sides and the per-bar stop
    assert set(result.trades["side"]) == {"long", "short"}
    assert got["direction"] == "both" and got["per_bar_stops"] == ["sl_stop"]
    path = GOLDEN / f"{case}.json"
    if request.config.getoption("--update-golden"):
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        return
    assert path.exists(), f"{path} missing: run pytest {__file__} --update-golden"
    want = json.loads(path.read_text())
    problems = _compare(json.loads(json.dumps(got)), want, case)
    assert not problems, "\n".join(problems[:20])
