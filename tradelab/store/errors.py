"""Errors raised by the store (kept here until ``tradelab.errors`` grows them)."""

from __future__ import annotations

from tradelab.errors import StoreFailure, TradelabError


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


class LeaseLost(Exception):
    """The run's lease belongs to another engine now: this one must stop writing."""


class LeaseHeldError(StoreError):
    """Another engine owns the run (its lease has not expired); ``owner`` names it."""

    def __init__(self, owner: str, message: str) -> None:
        self.owner = owner
        super().__init__(message)


def describe_failure(exc: BaseException) -> str:
    """A short label for a failed write: ``database locked``, ``disk full``, ``connection lost``...

    Works on the DBAPI's own exceptions (sqlite3, psycopg) and SQLAlchemy's wrappers,
    by their class and message, since each driver words these differently.
    """
    text = f"{type(exc).__name__}: {exc}".lower()
    inner = getattr(exc, "orig", None)
    if inner is not None:
        text += f" {type(inner).__name__}: {inner}".lower()
    if "locked" in text or "busy" in text:
        return "database locked"
    if "full" in text or "no space" in text or "file too large" in text or "disk i/o" in text:
        return "disk full"
    if any(w in text for w in ("connection", "server closed", "terminating", "shutdown",
                                "could not connect", "operationalerror: consuming input failed",
                                "admin_shutdown", "the connection is closed")):
        return "connection lost"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()


def failure(what: str, exc: BaseException) -> StoreFailure:
    """``exc`` as a :class:`StoreFailure` naming ``what`` and the cause (locked, disk full, ...)."""
    if isinstance(exc, StoreFailure):
        return exc
    cause = "lease lost" if isinstance(exc, LeaseLost) else describe_failure(exc)
    return StoreFailure(f"{what}: {cause}", cause)
