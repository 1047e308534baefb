"""Order model and state machine.

States: ``new → submitted → partially_filled → filled | cancelled | rejected | expired``.
``new`` may also go straight to ``rejected`` (risk denial or broker refusal) or
``cancelled``; ``partially_filled`` repeats while fills arrive. ``pending`` is an
order sent to a venue whose answer was lost (timeout, dropped connection,
unparseable reply): the venue may or may not hold it, so it is neither re-sent
blindly nor rejected; a query by client id, the venue's stream or reconciliation
moves it on (to any state the venue reports, or back to being sent when the
venue says it has never seen the id). Anything else
raises :class:`IllegalTransitionError` naming the order and both states.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from tradelab.errors import TradelabError
from tradelab.money import ZERO


class OrderState(StrEnum):
    NEW = "new"
    PENDING = "pending"
    SUBMITTED = "submitted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"


S = OrderState
TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    S.NEW: frozenset({S.PENDING, S.SUBMITTED, S.REJECTED, S.CANCELLED}),
    # Resolved by what the venue says.
    S.PENDING: frozenset({S.SUBMITTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED,
                          S.EXPIRED}),
    S.SUBMITTED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED}),
    S.FILLED: frozenset(), S.CANCELLED: frozenset(), S.REJECTED: frozenset(), S.EXPIRED: frozenset(),
}
OPEN_STATES = frozenset({S.NEW, S.PENDING, S.SUBMITTED, S.PARTIALLY_FILLED})


class IllegalTransitionError(TradelabError):
    """An order asked to move between two states the state machine does not connect."""

    def __init__(self, client_order_id: str, from_state: str, to_state: str) -> None:
        self.client_order_id, self.from_state, self.to_state = client_order_id, from_state, to_state
        allowed = ", ".join(sorted(TRANSITIONS[OrderState(from_state)])) or "none (terminal)"
        super().__init__(f"order {client_order_id}: illegal transition {from_state} -> {to_state} "
                         f"(allowed from {from_state}: {allowed})")


def check_transition(client_order_id: str, from_state: OrderState, to_state: OrderState) -> None:
    if to_state not in TRANSITIONS[from_state]:
        raise IllegalTransitionError(client_order_id, from_state.value, OrderState(to_state).value)


def client_order_id(run_id: str, strategy: str, symbol: str, bar_time: datetime, side: str) -> str:
    """A deterministic client order id.

    The same run, strategy, symbol, bar and side always give the same id, so a
    restarted engine regenerates the ids of orders it may already have sent and
    the store and the broker dedupe them.
    """
    key = f"{run_id}|{strategy}|{symbol}|{bar_time.isoformat()}|{side}"
    return "tl-" + hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


@dataclass(frozen=True, slots=True)
class Fill:
    fill_id: str
    client_order_id: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    fees: Decimal
    at: datetime


@dataclass(slots=True)
class Order:
    """A mutable order owned by the OrderManager; events carry frozen copies (:meth:`snapshot`).

    ``quantity`` is ``None`` for an entry sized at fill time by the execution
    convention (what vectorbt does: size on the fill bar's price with the cash
    available then); ``estimate`` is the quantity risk checks use meanwhile.
    """

    client_order_id: str
    account: str
    strategy: str
    symbol: str
    side: str                       # "buy" | "sell"
    quantity: Decimal | None
    created_at: datetime            # the bar time the order was decided on
    order_type: str = "market"      # "market" | "limit" | "stop"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: str = "gtc"      # "gtc" | "day"
    estimate: Decimal = ZERO
    reference_price: Decimal = ZERO
    run_id: str = ""
    state: OrderState = OrderState.NEW
    filled_quantity: Decimal = ZERO
    avg_fill_price: Decimal = ZERO
    fees: Decimal = ZERO
    reason: str = ""
    broker_order_id: str = ""
    updated_at: datetime | None = None
    fills: list[Fill] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def remaining(self) -> Decimal | None:
        return None if self.quantity is None else self.quantity - self.filled_quantity

    def transition(self, to_state: OrderState, at: datetime, reason: str = "") -> OrderState:
        """Move to ``to_state`` (raising on an illegal move); return the previous state."""
        before = self.state
        check_transition(self.client_order_id, before, to_state)
        self.state = OrderState(to_state)
        self.updated_at = at
        if reason:
            self.reason = reason
        return before

    def snapshot(self) -> Order:
        return replace(self, fills=list(self.fills))

    def row(self) -> dict:
        """Store fields (primitives only)."""
        return {
            "account": self.account, "run_id": self.run_id, "strategy": self.strategy,
            "symbol": self.symbol, "side": self.side, "order_type": self.order_type,
            "quantity": self.quantity, "limit_price": self.limit_price, "stop_price": self.stop_price,
            "time_in_force": self.time_in_force, "state": self.state.value,
            "filled_quantity": self.filled_quantity, "avg_fill_price": self.avg_fill_price,
            "fees": self.fees, "reason": self.reason, "broker_order_id": self.broker_order_id,
            "created_at": self.created_at, "updated_at": self.updated_at or self.created_at,
        }
