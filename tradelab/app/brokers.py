"""Brokers by name: ``[engine] broker`` picks one of :data:`BROKERS`.

A factory takes the run's execution convention, the symbols it trades and the
engine configuration, and returns an object satisfying
:class:`tradelab.interfaces.Broker`. Live adapters register here too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tradelab.errors import TradelabError
from tradelab.execution import Execution
from tradelab.interfaces import Broker

BrokerFactory = Callable[[Execution, set[str], Any], Broker]


def _paper(execution: Execution, symbols: set[str], config: Any) -> Broker:
    from tradelab.orders.brokers.paper import PaperBroker

    return PaperBroker(execution, execution.cash, symbols=symbols,
                       volume_fraction=getattr(config, "volume_fraction", None))


BROKERS: dict[str, BrokerFactory] = {"paper": _paper}


class UnknownBrokerError(TradelabError, KeyError):
    """A broker name that no factory is registered for."""

    def __str__(self) -> str:
        return str(self.args[0])


def make_broker(name: str, execution: Execution, symbols: set[str], config: Any = None) -> Broker:
    """The broker registered as ``name`` (``[engine] broker``)."""
    factory = BROKERS.get(name)
    if factory is None:
        raise UnknownBrokerError(f"[engine] broker = {name!r}: unknown broker; available: "
                                 f"{', '.join(sorted(BROKERS))}")
    return factory(execution, symbols, config)


def register_broker(name: str, factory: BrokerFactory) -> None:
    """Make ``factory`` available as ``[engine] broker = name``."""
    BROKERS[name] = factory
