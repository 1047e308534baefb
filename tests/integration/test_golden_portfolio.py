"""Golden result of the shipped ``momentum_rotation`` on its default universe (``sp20``,
1990–2022 from the sample source) with default parameters and the default execution
convention. A change in any figure, per-symbol result, final weight or order means
behaviour changed; if intended, rewrite the file with
``pytest tests/integration/test_golden_portfolio.py --update-golden``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_golden import _compare
from tradelab.research.portfolio import backtest_portfolio, portfolio_strategy

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "momentum_rotation.json"


def _summary() -> dict[str, Any]:
    result = backtest_portfolio(portfolio_strategy("momentum_rotation", paths=[ROOT / "strategies"]))
    data = result.to_dict()
    orders = data.pop("orders")
    # Every order (time, symbol, side, exact quantity and price) in one digest, plus the
    # first few in full so that a change shows where it starts.
    data["orders_sha256"] = hashlib.sha256(json.dumps(orders).encode()).hexdigest()
    data["first_orders"] = orders[:10]
    return json.loads(json.dumps(data))


def test_golden_momentum_rotation(request: pytest.FixtureRequest) -> None:
    got = _summary()
    if request.config.getoption("--update-golden"):
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        return
    assert GOLDEN.exists(), f"{GOLDEN} missing: run pytest {__file__} --update-golden"
    want = json.loads(GOLDEN.read_text())
    problems = _compare(got, want, "momentum_rotation")
    assert not problems, "\n".join(problems[:20])
