"""Smoke test: ``bench/live.py --quick`` runs against the simulators and prints its table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_live_quick_prints_the_table() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "live.py"), "--quick"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for header in ("bar -> order accepted", "p50 ms", "p99 ms", "reconciliation", "submit throughput",
                   "orders/s", "binance sim", "alpaca sim"):
        assert header in out, (header, out)
