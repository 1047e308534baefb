"""Account-wide risk shared by several engine processes through the store.

An engine in shared-account mode (``[engine] shared_account = true``) keeps
judging the limits that concern only itself (order size, position size,
orders per minute, trading hours, allow-list, per-strategy overrides) on its
own positions, as before. The account's limits on **gross exposure, daily
loss and drawdown**, and the **kill switch**, are judged on the account as a
whole, read from the store in a transaction that holds the account lock:

* :meth:`StoreRiskView.approve` (every order request): lock the account,
  record this symbol's price, read cash, positions, marks and every open
  order of every engine, evaluate the account rules with this order added and,
  if it passes, write the order row (the write-ahead row, which is also its
  reservation: the next engine's check counts it as pending) before the
  commit releases the lock. Two engines can therefore never both pass a check
  that only one of them fits under: the second one waits for the lock and then
  sees the first one's order.
* :meth:`StoreRiskView.sync` (every bar): lock, record this engine's prices,
  roll the account's day-start and peak equity, engage the kill switch if the
  account's daily loss or drawdown is breached, and return the switch's state,
  so a halt from any process or rule is seen by every engine at its next bar.

The rules themselves are the pure functions of :mod:`tradelab.risk.rules`,
applied to a :class:`~tradelab.risk.rules.RiskContext` built from the account.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tradelab.money import ZERO
from tradelab.risk.rules import RULES, RiskContext, RiskLimits

if TYPE_CHECKING:
    from tradelab.store import Store

#: The limits judged on the whole account in shared mode (the rest stay per engine).
ACCOUNT_RULES = ("max_gross_exposure", "max_daily_loss", "max_drawdown")
_CRITICAL = ("max_daily_loss", "max_drawdown")

Breach = tuple[str, str, bool]  # rule, reason, critical
KillState = tuple[bool, str, str]


def without_account_rules(limits: RiskLimits) -> RiskLimits:
    """``limits`` with the account-wide rules switched off (they are judged on the account)."""
    return replace(limits, **dict.fromkeys(ACCOUNT_RULES))


@dataclass(frozen=True)
class SyncOutcome:
    """What a per-bar sync found: the kill switch as stored, and a breach it engaged it for."""

    kill: KillState
    breach: Breach | None
    equity: Decimal
    gross_exposure: Decimal


class StoreRiskView:
    """The account-wide risk view of one engine, kept in the store.

    Parameters
    ----------
    store
        The shared :class:`tradelab.store.Store` (PostgreSQL when engines run
        on several machines; a SQLite file serializes writers the same way).
    account_id
        The account's row id.
    limits
        The account's limits; only :data:`ACCOUNT_RULES` are used here.
    write_ahead
        ``write_ahead(tx, client_order_id)`` writes an approved order's row in
        the approving transaction (see :meth:`tradelab.store.recorder.Recorder.write_ahead_in`).
    """

    def __init__(self, store: Store, account_id: int, limits: RiskLimits,
                 write_ahead: Callable[[Any, str], None] | None = None) -> None:
        from tradelab.store import shared_repo  # the risk rules themselves stay free of SQL

        self.store, self.account_id, self.limits = store, account_id, limits
        self.write_ahead = write_ahead
        self._repo = shared_repo
        self.checks = self.syncs = 0

    def _locked(self) -> Any:
        return self.store.transaction()

    def _rules(self, ctx: RiskContext, names: tuple[str, ...]) -> list[Breach]:
        out = []
        for name in names:
            rule, critical = RULES[name]
            reason = rule(ctx, self.limits)
            if reason is not None:
                out.append((name, f"account: {reason}", critical))
        return out

    def approve(self, client_order_id: str, at: datetime, symbol: str, side: str,
                quantity: Decimal, price: Decimal, strategy: str) -> tuple[list[Breach], KillState]:
        """Judge one order on the account; on success its row is committed before this returns.

        Returns the breaches (empty: approved and reserved) and the kill switch
        as stored. A critical breach engages the kill switch in the same commit.
        """
        self.checks += 1
        with self._locked() as tx:
            tx.lock_account(self.account_id)
            self._repo.set_marks(tx, self.account_id, {symbol: price}, at)
            view = self._repo.read_view(tx, self.account_id)
            if view.kill[0]:
                return [], view.kill
            equity = view.equity
            start, peak = self._repo.roll_risk_state(tx, view, at.date(), equity, at)
            ctx = RiskContext(at, symbol, side, quantity, price, view.worst_position(symbol), equity,
                              peak, start, view.gross_exposure, 0, strategy)
            breaches = self._rules(ctx, ACCOUNT_RULES)
            critical = next((b for b in breaches if b[2]), None)
            if critical is not None:
                kill = (True, f"{critical[0]}: {critical[1]}", "risk")
                tx.set_kill_switch(self.account_id, *kill, at)
                return breaches, kill
            if not breaches and self.write_ahead is not None:
                self.write_ahead(tx, client_order_id)
            return breaches, view.kill

    def sync(self, at: datetime, prices: Mapping[str, Decimal]) -> SyncOutcome:
        """Per bar: share this engine's prices, roll day/peak equity, check the account's losses."""
        self.syncs += 1
        with self._locked() as tx:
            tx.lock_account(self.account_id)
            self._repo.set_marks(tx, self.account_id, prices, at)
            view = self._repo.read_view(tx, self.account_id)
            equity = view.equity
            start, peak = self._repo.roll_risk_state(tx, view, at.date(), equity, at)
            if view.kill[0] or (self.limits.max_daily_loss is None and self.limits.max_drawdown is None):
                return SyncOutcome(view.kill, None, equity, view.gross_exposure)
            ctx = RiskContext(at, "", "buy", ZERO, ZERO, ZERO, equity, peak, start, ZERO)
            breaches = self._rules(ctx, _CRITICAL)
            if not breaches:
                return SyncOutcome(view.kill, None, equity, view.gross_exposure)
            name, reason, _ = breaches[0]
            kill = (True, f"{name}: {reason}", "risk")
            tx.set_kill_switch(self.account_id, *kill, at)
            return SyncOutcome(kill, breaches[0], equity, view.gross_exposure)


__all__ = ["ACCOUNT_RULES", "StoreRiskView", "SyncOutcome", "without_account_rules"]
