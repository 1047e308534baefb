"""Shared helpers for the job integration tests (real papermill, real kernels)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "notebooks" / "tiny_job.ipynb"


class Collect:
    """Keeps what would have been notified."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], str | None]] = []
        self.listeners: list[Any] = []

    def notify(self, event_type: str, context: dict[str, Any], *, severity: str | None = None,
               reference: str | None = None) -> int:
        self.sent.append((event_type, context, severity))
        return 1


def wait_until(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Bounded wait with a clear failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout}s")


def in_background(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    return t, out


def kernels_of(run_id: int) -> list[psutil.Process]:
    """Live processes started for job run ``run_id`` (the executor and its kernel)."""
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get("TRADELAB_JOB_RUN_ID") == str(run_id):
                found.append(p)
        except psutil.Error:
            continue
    return found
