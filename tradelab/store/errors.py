"""Errors raised by the store (kept here until ``tradelab.errors`` grows them)."""

from __future__ import annotations

from tradelab.errors import TradelabError


class StoreError(TradelabError):
    """A store operation that cannot be done as asked."""


class UnknownAccountError(StoreError, KeyError):
    """An account name (or id) that does not exist; call ``ensure_account`` first."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


class UnknownOrderError(StoreError, KeyError):
    """A client order id that was never stored."""

    def __str__(self) -> str:
        return str(self.args[0])


class OrderConflictError(StoreError):
    """A client order id reused for a different order (account, symbol or side differ)."""
