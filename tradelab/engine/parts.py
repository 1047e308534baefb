"""What an engine is configured with, handed, resumes from and returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from tradelab.interfaces import Broker, RunRecorder
from tradelab.orders.manager import OrderManager
from tradelab.portfolio import Portfolio
from tradelab.risk.manager import KillSwitch, RiskManager
from tradelab.strategy.exits import Stops


@dataclass
class EngineConfig:
    """Engine behaviour; see ``[engine]`` in the configuration."""

    account: str = "paper"
    # Routine commits happen every `flush_every` bars or `flush_seconds` of wall-clock
    # time, whichever comes first. The time bound keeps the store (and so the dashboard
    # and other processes) within a second of a live engine, where bars are seconds or
    # minutes apart; the bar bound caps the work a restart replays. At full replay speed
    # the time bound makes commits rare. Orders never wait for either: the state an
    # order depends on is committed before it leaves (see tradelab.store.recorder).
    flush_every: int = 500
    flush_seconds: float = 0.5
    cancel_on_stop: bool = False   # cancel open orders on shutdown (else keep them for a restart)
    signal_mode: str = "window"    # "window" or "precomputed" (replays only)
    kill_poll_every: int = 1       # bars between kill-switch re-reads (always re-read before an order)
    # ... and at least this many wall-clock seconds between them: a replay at full speed
    # would otherwise spend most of its time re-reading one row that an operator changes
    # a few times a year. Orders never depend on this poll (risk re-reads before approving);
    # it only bounds how fast a `risk halt --flatten` from another process is noticed.
    kill_poll_seconds: float = 0.25
    retry_attempts: int = 5
    retry_max_wait: float = 2.0
    volume_fraction: float | None = None
    # A run has one owner: its lease in the store is renewed with every commit (at least
    # every flush_seconds) and a second engine is refused until it expires.
    lease_seconds: float = 30.0
    # Several engines trade this account: gross exposure, daily loss, drawdown and the
    # kill switch are judged on the whole account in the store, under its lock
    # (tradelab.risk.shared); entries are sized when decided, so that what risk
    # reserved bounds what fills; the account is synced (and the switch read) every bar.
    shared_account: bool = False
    # A real venue (broker.simulated False): seconds between reconciliations while
    # running, and whether a position mismatch at start is resolved by taking the
    # venue's state (`tradelab live --adopt`) instead of refusing to start.
    reconcile_seconds: float = 60.0
    adopt: bool = False
    # The side the strategies' flags trade and their declared exits (stop-loss,
    # take-profit, trailing, time stop); None: each strategy's own (see
    # tradelab.strategy.exits and tradelab.engine.sides).
    direction: str | None = None
    stops: Stops | None = None


@dataclass
class EngineResult:
    """What a run did; ``equity`` is the final mark-to-market equity."""

    run_id: int | str
    account: str
    bars: int
    cash: Decimal
    equity: Decimal
    initial_cash: Decimal
    fills: list = field(default_factory=list)
    risk_alerts: list = field(default_factory=list)
    equity_curve: list[tuple[datetime, float]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    stopped: str = "finished"
    resumed_from: datetime | None = None

    @property
    def total_return(self) -> float:
        return float(self.equity / self.initial_cash - 1)


@dataclass
class RunState:
    """Where a run stands when the engine starts (new: id only; resumed: what came before)."""

    run_id: int | str = "memory"
    resumed_from: datetime | None = None
    fills: list = field(default_factory=list)
    bars: int = 0
    alerts: int = 0


@dataclass
class EngineParts:
    """Everything an engine is handed by the composition root (:mod:`tradelab.app`).

    The engine constructs none of these and never asks which class they are:
    what differs between a simulated and a real venue is ``broker.simulated``.
    """

    broker: Broker
    orders: OrderManager
    portfolio: Portfolio
    risk: RiskManager
    kill_switch: KillSwitch
    #: The run's store writer; ``None`` runs in memory (tests, parity).
    recorder: RunRecorder | None = None
    #: The shared-account risk view (``[engine] shared_account``), else ``None``.
    shared: Any = None
    #: Names of strategies switched off from the API/dashboard (re-read with the kill switch).
    disabled: Callable[[], frozenset[str]] | None = None
    #: What a resume restored: run id, last processed bar, the run's earlier fills and bars.
    run: RunState | None = None
    #: Compares the book with a real venue (``run(trigger, adopt=...)``); ``None`` for
    #: a simulated venue, whose state is a function of the store (it is rebuilt instead).
    reconciler: Any = None


__all__ = ["EngineConfig", "EngineParts", "EngineResult", "RunState"]
