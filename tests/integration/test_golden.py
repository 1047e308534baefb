"""Golden results: each shipped strategy on SPX with default parameters and the default
convention. A change in any stat or trade means behaviour changed; if it is intended,
rewrite the files with ``pytest tests/integration/test_golden.py --update-golden``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tradelab.research.backtest import backtest
from tradelab.strategy.registry import StrategyRegistry

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
STRATEGIES = ["sma_cross", "rsi_reversion", "donchian_breakout"]
REL = 1e-9


@pytest.fixture(scope="module")
def registry() -> StrategyRegistry:
    return StrategyRegistry.discover([ROOT / "strategies"], entry_points=False)


def _compare(got: Any, want: Any, where: str) -> list[str]:
    """Every difference, numbers to 1e-9 relative."""
    if isinstance(want, dict) and isinstance(got, dict):
        if set(got) != set(want):
            return [f"{where}: keys {sorted(got)} != {sorted(want)}"]
        return [d for k in want for d in _compare(got[k], want[k], f"{where}.{k}")]
    if isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            return [f"{where}: {len(got)} items != {len(want)}"]
        return [d for i, (g, w) in enumerate(zip(got, want, strict=True))
                for d in _compare(g, w, f"{where}[{i}]")]
    if (isinstance(want, (int, float)) and isinstance(got, (int, float))
            and not isinstance(want, bool)):
        ok = math.isclose(got, want, rel_tol=REL, abs_tol=1e-12)
        return [] if ok else [f"{where}: {got!r} != {want!r}"]
    return [] if got == want else [f"{where}: {got!r} != {want!r}"]


@pytest.mark.parametrize("name", STRATEGIES)
def test_golden(spx, registry: StrategyRegistry, request: pytest.FixtureRequest,
                name: str) -> None:
    result = backtest(registry.create(name), spx)
    got = {k: v for k, v in result.to_dict().items() if k != "orders"}
    path = GOLDEN / f"{name}.json"
    if request.config.getoption("--update-golden"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        return
    assert path.exists(), f"{path} missing: run pytest {__file__} --update-golden"
    want = json.loads(path.read_text())
    problems = _compare(json.loads(json.dumps(got)), want, name)
    assert not problems, "\n".join(problems[:20])
