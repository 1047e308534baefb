"""One composition root: concrete parts are chosen in ``tradelab/app/`` only (issue 11).

Read from the source with :mod:`ast`: a call of one of the concrete classes (or
factories) below anywhere else in the package is a part chosen outside the root.
Tests and :mod:`tradelab.testing` may build what they like.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What the root chooses: store, brokers, engine parts, feeds, caches, notifier, gate,
# metrics, jobs runner. (AuthService is the API's and dashboard's own service layer over
# the store the root gives them.)
CONCRETE = {
    "Store", "PaperBroker", "Engine", "Recorder", "SideConnection", "RiskManager", "KillSwitch",
    "OrderManager", "StoreRiskView", "TieredCache", "DiskCache", "MemoryCache", "RedisCache",
    "Notifier", "JobRunner", "JobScheduler", "ReplayFeed", "WebsocketFeed", "CcxtFeed", "PollingFeed",
    "MarketData", "QualityGate", "Metrics",
}
# Where a class may still be constructed: its own module (a classmethod, a factory next
# to it) and the parity check, which is a root of its own (a research backtest and an
# in-memory engine replay of the same bars, above both).
ALLOWED = {
    "tradelab/store/store.py": {"Store"},
    "tradelab/parity.py": {"ReplayFeed"},
}


def _calls(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if name in CONCRETE:
                out.append((node.lineno, name))
    return out


def test_concrete_parts_are_chosen_in_the_composition_root_only() -> None:
    bad = []
    for path in sorted((ROOT / "tradelab").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("tradelab/app/") or rel == "tradelab/testing.py":
            continue
        allowed = ALLOWED.get(rel, set())
        bad += [f"{rel}:{line} builds {name}" for line, name in _calls(path) if name not in allowed]
    assert not bad, "\n".join(bad)


def test_the_engine_never_asks_which_broker_it_has() -> None:
    """What differs between venues is a property the broker declares (``simulated``)."""
    found = []
    for path in sorted((ROOT / "tradelab" / "engine").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in ("isinstance", "type") \
                    and "broker" in ast.unparse(node).lower():
                found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                    ("tradelab.orders.brokers.paper", "tradelab.store", "sqlalchemy")):
                found.append(f"{path.name}:{node.lineno} imports {node.module}")
    assert not found, found


def test_the_root_is_the_only_place_that_knows_the_engine_parts() -> None:
    """The scan above is not vacuous: the root does build them."""
    built = {name for path in (ROOT / "tradelab" / "app").rglob("*.py") for _, name in _calls(path)}
    assert {"OrderManager", "RiskManager", "KillSwitch", "Recorder", "SideConnection",
            "Engine"} <= built
