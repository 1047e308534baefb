"""The RiskManager (approve or deny every order request) and the kill switch.

Flow: ``OrderRequested`` → :meth:`RiskManager.on_order_requested` → either
``OrderApproved`` or a rejection (``OrderRejected`` by ``risk``) plus a
``RiskAlert``. A critical breach (daily loss, drawdown) also engages the kill
switch. While the switch is engaged no order leaves, whatever its rules say,
except the orders that reduce risk: closing orders (:data:`FLATTEN`) and the
protective exits of declared stops (stop-loss, take-profit, trailing, time; the
client ids in :attr:`RiskManager.exits`) when they strictly reduce the position
they close (never open or flip one). Such an approval is recorded as an ``info``
``RiskAlert`` of rule ``kill_switch`` saying why it passed.

The kill switch state lives in the store, so another process (``tradelab risk
halt``) can engage it: :meth:`KillSwitch.refresh` re-reads it (the engine calls
it every bar and always right before an order would be approved).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog

from tradelab.bus import STAGE_RISK, EventBus
from tradelab.events import KillSwitchEngaged, KillSwitchReleased, OrderApproved, OrderRequested, RiskAlert
from tradelab.interfaces import Clock
from tradelab.money import ZERO, to_decimal
from tradelab.orders.brokers import VenueRuleDenied
from tradelab.orders.rules import VenueRules, conform
from tradelab.portfolio import Portfolio
from tradelab.risk.rules import RiskContext, RiskLimits, evaluate, max_daily_loss, max_drawdown
from tradelab.risk.shared import StoreRiskView, without_account_rules

log = structlog.get_logger("tradelab.risk")

KillState = tuple[bool, str, str]  # engaged, reason, by


#: Strategy name of the orders that close positions under a halt (risk lets them through).
FLATTEN = "flatten"
#: Kill-switch reason prefix asking the engines to close their positions (``risk halt --flatten``).
FLATTEN_MARK = "[flatten] "


class KillSwitch:
    """Halts trading for an account; persisted through ``read``/``write`` callbacks.

    Parameters
    ----------
    account
        The account it guards.
    read
        Returns the stored ``(engaged, reason, by)`` or ``None`` (never set).
    write
        Persists ``(engaged, reason, by)``.
    """

    def __init__(self, account: str, bus: EventBus, clock: Clock,
                 read: Callable[[], KillState | None] | None = None,
                 write: Callable[[bool, str, str], None] | None = None) -> None:
        self.account, self.bus, self.clock = account, bus, clock
        self._read, self._write = read, write
        self.engaged, self.reason, self.by = False, "", ""
        #: Whether the last change came from outside this engine (read from the store).
        self.external = False

    def detach(self) -> None:
        """Stop reading the stored state (the engine stopped; nothing left to guard)."""
        self._read = None

    def refresh(self) -> bool:
        """Re-read the stored state; publish an event when another process changed it."""
        if self._read is None:
            return self.engaged
        return self.observe(self._read())

    def observe(self, state: KillState | None, *, own: bool = False) -> bool:
        """Take ``state`` as read from the store (publishes a change).

        ``own``: this engine's rule engaged it (in a shared-account commit), as
        opposed to an operator or another process; see :attr:`external`.
        """
        engaged, reason, by = state if state is not None else (False, "", "")
        if engaged != self.engaged:
            self.engaged, self.reason, self.by = engaged, reason, by
            self.external = not own
            kind = KillSwitchEngaged if engaged else KillSwitchReleased
            self.bus.publish(kind(self.clock.now(), self.account, reason, by))
        return self.engaged

    def engage(self, reason: str, by: str) -> None:
        if self.engaged:
            return
        self.engaged, self.reason, self.by, self.external = True, reason, by, False
        if self._write is not None:
            self._write(True, reason, by)
        self.bus.publish(KillSwitchEngaged(self.clock.now(), self.account, reason, by))

    def release(self, reason: str, by: str) -> None:
        if not self.engaged:
            return
        self.engaged, self.reason, self.by = False, reason, by
        if self._write is not None:
            self._write(False, reason, by)
        self.bus.publish(KillSwitchReleased(self.clock.now(), self.account, reason, by))


class RiskManager:
    """Approves or denies order requests for one account.

    Parameters
    ----------
    limits
        Account-wide limits.
    per_strategy
        Strategy name → limits overriding the account's for that strategy.
    reject
        ``reject(client_order_id, reason)``: how a denial reaches the order manager.
    """

    def __init__(self, account: str, portfolio: Portfolio, bus: EventBus, clock: Clock,
                 kill_switch: KillSwitch, reject: Callable[[str, str], None],
                 limits: RiskLimits | None = None,
                 per_strategy: dict[str, RiskLimits] | None = None,
                 shared: StoreRiskView | None = None,
                 venue_rules: Callable[[str], VenueRules | None] | None = None) -> None:
        self.account, self.portfolio, self.bus, self.clock = account, portfolio, bus, clock
        #: The venue's lot/tick/minimum rules per symbol (a live broker's ``rules``);
        #: an order that cannot satisfy them is denied here, never sent to be rejected.
        self.venue_rules = venue_rules
        self.kill_switch, self._reject = kill_switch, reject
        self.limits = limits or RiskLimits()
        self.shared = shared
        overrides = per_strategy or {}
        self.per_strategy = {k: self.limits.merged(v) for k, v in overrides.items()}
        if shared is not None:
            # The account's own gross-exposure, daily-loss and drawdown limits are judged
            # on the whole account by `shared`; here only what a strategy overrides for
            # itself still applies to this engine's positions.
            local = without_account_rules(self.limits)
            self.per_strategy = {k: local.merged(v) for k, v in overrides.items()}
            self.limits = local
        self.peak_equity = portfolio.equity
        self.day_start_equity = portfolio.equity
        #: The equity after the last bar: a new day's loss is measured from it (the
        #: previous close), so the day's first bar counts, and with daily bars, where
        #: every bar opens a day, the daily loss is that bar's.
        self.last_equity = portfolio.equity
        self._day: object = None
        self._recent: deque[datetime] = deque()
        self.denials = 0
        #: Client id → kind (``sl``, ``tp``, ``trail``, ``time``) of the orders of declared
        #: exits; the engine points it at its own record (tradelab.engine.sides). Those
        #: that strictly reduce a position pass a halt.
        self.exits: Mapping[str, str] = {}
        bus.step(OrderRequested, self.on_order_requested, stage=STAGE_RISK)  # a failure: no order

    def limits_for(self, strategy: str) -> RiskLimits:
        return self.per_strategy.get(strategy, self.limits)

    # -- per bar --------------------------------------------------------------------
    def on_equity(self, at: datetime, equity: Decimal) -> None:
        """Track peak and day-start equity; a critical breach engages the kill switch."""
        day = at.date()
        if day != self._day:
            self._day, self.day_start_equity = day, self.last_equity
        self.last_equity = equity
        if equity > self.peak_equity:
            self.peak_equity = equity
        lim = self.limits
        if (lim.max_drawdown is None and lim.max_daily_loss is None) or self.kill_switch.engaged:
            return
        ctx = self._context(at, "", "buy", ZERO, ZERO, "", equity)
        for name, rule in (("max_drawdown", max_drawdown), ("max_daily_loss", max_daily_loss)):
            reason = rule(ctx, lim)
            if reason is not None:
                self._alert(at, name, reason, "critical", None, None)
                self.kill_switch.engage(f"{name}: {reason}", by="risk")
                return

    def restore(self, peak: Decimal, day: object, day_start: Decimal, last: Decimal) -> None:
        """Continue a resumed run's drawdown and daily loss from its stored equity curve."""
        self.peak_equity = max(self.peak_equity, peak)
        self._day, self.day_start_equity, self.last_equity = day, day_start, last

    # -- per order ------------------------------------------------------------------
    def _context(self, at: datetime, symbol: str, side: str, quantity: Decimal, price: Decimal,
                 strategy: str, equity: Decimal | None = None) -> RiskContext:
        cutoff = at - timedelta(minutes=1)
        while self._recent and self._recent[0] <= cutoff:
            self._recent.popleft()
        pf = self.portfolio
        return RiskContext(at, symbol, side, quantity, price, pf.position(symbol) if symbol else ZERO,
                           pf.equity if equity is None else equity,
                           self.peak_equity, self.day_start_equity, pf.gross_exposure,
                           len(self._recent), strategy)

    def on_order_requested(self, event: OrderRequested) -> None:
        order = event.order
        at = self.clock.now()
        cid = event.client_order_id
        if self.venue_rules is not None and self._venue_denied(at, cid, order):
            return
        if order.strategy == FLATTEN:  # closing positions is how a halted account reduces risk
            self.bus.publish(OrderApproved(at, cid))
            return
        if self.kill_switch.refresh():
            if self._protective(at, cid, order):
                self.bus.publish(OrderApproved(at, cid))
                return
            self._deny_halted(at, cid, order.strategy)
            return
        qty = order.quantity if order.quantity is not None else order.estimate
        price = order.limit_price or order.stop_price or order.reference_price
        ctx = self._context(at, order.symbol, order.side, to_decimal(qty), to_decimal(price),
                            order.strategy)
        breaches = evaluate(ctx, self.limits_for(order.strategy))
        if not breaches and self.shared is not None:
            # Last, because it commits: on success the order row is written (and so
            # reserved against the account's limits) before the account lock is let go.
            breaches, kill = self.shared.approve(cid, at, order.symbol, order.side, ctx.quantity,
                                                 ctx.price, order.strategy)
            if kill[0] and not breaches:
                self.kill_switch.observe(kill)
                self._deny_halted(at, cid, order.strategy)
                return
            if kill[0]:  # this order's critical breach engaged it, in the same commit
                self._alert_all(at, order.strategy, cid, breaches)
                self._reject(cid, "; ".join(f"{n}: {r}" for n, r, _ in breaches))
                self.denials += 1
                self.kill_switch.observe(kill, own=True)
                return
        if breaches:
            self._alert_all(at, order.strategy, cid, breaches)
            self._reject(cid, "; ".join(f"{n}: {r}" for n, r, _ in breaches))
            self.denials += 1
            for name, reason, critical in breaches:
                if critical:
                    self.kill_switch.engage(f"{name}: {reason}", by="risk")
                    break
            return
        self._recent.append(at)
        self.bus.publish(OrderApproved(at, cid))

    def _protective(self, at: datetime, cid: str, order: Any) -> bool:
        """Whether ``order``, during a halt, is a declared exit that strictly reduces its
        position (recorded when it is); an entry, a reversal or an order sized at fill
        is not."""
        kind = self.exits.get(cid)
        if kind is None or order.quantity is None or order.quantity <= 0:
            return False
        held = self.portfolio.position(order.symbol)
        if not (order.quantity <= held if order.side == "sell" else order.quantity <= -held):
            return False
        ks = self.kill_switch
        self._alert(at, "kill_switch", f"{kind} exit passes the halt ({ks.reason}): {order.side} "
                    f"{order.quantity} of {order.symbol} reduces the position {held}", "info",
                    order.strategy, cid)
        return True

    def _venue_denied(self, at: datetime, cid: str, order: Any) -> bool:
        rules = self.venue_rules(order.symbol) if self.venue_rules is not None else None
        if rules is None:
            return False
        qty = order.quantity if order.quantity is not None else order.estimate
        try:
            conform(rules, order.side, to_decimal(qty), to_decimal(order.reference_price),
                    limit_price=order.limit_price, stop_price=order.stop_price)
        except VenueRuleDenied as exc:
            self._deny(at, cid, order.strategy, "venue_rules", str(exc))
            return True
        return False

    def account_breach(self, at: datetime, rule: str, reason: str) -> None:
        """Alert a critical account-wide breach found by a shared-account sync."""
        self._alert(at, rule, reason, "critical", None, None)

    def _deny_halted(self, at: datetime, cid: str, strategy: str) -> None:
        ks = self.kill_switch
        self._deny(at, cid, strategy, "kill_switch", f"kill switch engaged ({ks.reason}, by {ks.by})")

    def _alert_all(self, at: datetime, strategy: str, cid: str, breaches: list) -> None:
        for name, reason, critical in breaches:
            self._alert(at, name, reason, "critical" if critical else "warning", strategy, cid)

    def _deny(self, at: datetime, cid: str, strategy: str, rule: str, reason: str) -> None:
        self._alert(at, rule, reason, "warning", strategy, cid)
        self._reject(cid, f"{rule}: {reason}")
        self.denials += 1

    def _alert(self, at: datetime, rule: str, message: str, severity: str, strategy: str | None,
               cid: str | None) -> None:
        # Debug only: the RiskAlert event is what gets logged (once, with the run id, by
        # the session's event log: tradelab.monitor.logging), stored and notified.
        log.debug("risk_alert", account=self.account, rule=rule, message=message, severity=severity,
                  client_order_id=cid)
        self.bus.publish(RiskAlert(at, self.account, rule, message, severity, strategy, cid))
