"""Broker adapters and what they report back to the OrderManager."""

from __future__ import annotations

from dataclasses import dataclass

from tradelab.errors import TradelabError
from tradelab.orders.model import Fill


class TransientBrokerError(TradelabError):
    """A retryable failure (connection, timeout, 5xx). The order may or may not have arrived."""


class BrokerRejectedError(TradelabError):
    """The broker refused the order for good (unknown symbol, bad parameters)."""


@dataclass(frozen=True, slots=True)
class BrokerUpdate:
    """Something the broker did to an order: ``kind`` is fill, reject, cancel or expire."""

    kind: str
    client_order_id: str
    fill: Fill | None = None
    reason: str = ""


__all__ = ["BrokerRejectedError", "BrokerUpdate", "TransientBrokerError"]
