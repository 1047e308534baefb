"""Orders: the state machine, the OrderManager (idempotent ids, retries) and brokers."""

from tradelab.orders.model import (
    Fill,
    IllegalTransitionError,
    Order,
    OrderState,
    client_order_id,
)

__all__ = ["Fill", "IllegalTransitionError", "Order", "OrderState", "client_order_id"]
