"""Brokers by name: ``[engine] broker`` (or ``tradelab live --broker``) picks one of :data:`BROKERS`.

A factory takes the run's execution convention, the symbols it trades, the
engine configuration and the settings, and returns an object satisfying
:class:`tradelab.interfaces.Broker`:

* ``paper``: the simulated venue (:class:`~tradelab.orders.brokers.paper.PaperBroker`).
* ``ccxt``: :class:`~tradelab.brokers.ccxt_broker.CcxtBroker` on ``[live] exchange``
  (verified against Binance spot), credentials ``TRADELAB_CCXT_API_KEY`` /
  ``TRADELAB_CCXT_SECRET``.
* ``alpaca``: :class:`~tradelab.brokers.alpaca_broker.AlpacaBroker`, credentials
  ``TRADELAB_ALPACA_API_KEY`` / ``TRADELAB_ALPACA_SECRET``.

``[live] base_url`` / ``ws_url`` point a live adapter at a sandbox (Binance spot
testnet, Alpaca paper) or at ``tradelab venue-sim``. Credentials are read from
the environment only, here, and handed to the adapter; they are never logged.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from tradelab.errors import TradelabError
from tradelab.execution import Execution
from tradelab.interfaces import Broker

BrokerFactory = Callable[[Execution, set[str], Any, Any], Broker]


def _paper(execution: Execution, symbols: set[str], config: Any, settings: Any) -> Broker:
    from tradelab.orders.brokers.paper import PaperBroker

    # The simulated venue lends shares; whether a strategy may short a symbol is the
    # risk rule short_not_allowed's decision ([risk] allow_short).
    return PaperBroker(execution, execution.cash, symbols=symbols or None,
                       volume_fraction=getattr(config, "volume_fraction", None), allow_short=True)


class MissingCredentialsError(TradelabError):
    """A live broker was asked for without its keys in the environment."""


def credentials(venue: str) -> tuple[str, str]:
    """``(api_key, secret)`` from ``TRADELAB_<VENUE>_API_KEY`` / ``TRADELAB_<VENUE>_SECRET``."""
    names = (f"TRADELAB_{venue.upper()}_API_KEY", f"TRADELAB_{venue.upper()}_SECRET")
    values = tuple(os.environ.get(n, "") for n in names)
    missing = [n for n, v in zip(names, values, strict=True) if not v]
    if missing:
        raise MissingCredentialsError(f"broker {venue}: set {' and '.join(missing)} in the environment "
                                      "(keys are read from the environment only)")
    return values[0], values[1]


def _live(settings: Any) -> Any:
    if settings is None:
        from tradelab.config import LiveSettings

        return LiveSettings()
    return settings.live


def _ccxt(execution: Execution, symbols: set[str], config: Any, settings: Any) -> Broker:
    from tradelab.brokers.ccxt_broker import CcxtBroker

    live = _live(settings)
    key, secret = credentials("ccxt")
    return CcxtBroker(live.exchange, api_key=key, secret=secret, rest_url=live.base_url,
                      ws_url=live.ws_url, symbols=sorted(symbols), timeout=live.request_timeout,
                      sandbox=live.sandbox and not live.base_url)


def _alpaca(execution: Execution, symbols: set[str], config: Any, settings: Any) -> Broker:
    from tradelab.brokers.alpaca_broker import AlpacaBroker

    live = _live(settings)
    key, secret = credentials("alpaca")
    return AlpacaBroker(api_key=key, secret=secret, rest_url=live.base_url, ws_url=live.ws_url,
                        paper=live.sandbox, symbols=sorted(symbols), timeout=live.request_timeout)


BROKERS: dict[str, BrokerFactory] = {"paper": _paper, "ccxt": _ccxt, "alpaca": _alpaca}


class UnknownBrokerError(TradelabError, KeyError):
    """A broker name that no factory is registered for."""

    def __str__(self) -> str:
        return str(self.args[0])


def make_broker(name: str, execution: Execution, symbols: set[str], config: Any = None,
                settings: Any = None) -> Broker:
    """The broker registered as ``name`` (``[engine] broker``)."""
    factory = BROKERS.get(name)
    if factory is None:
        raise UnknownBrokerError(f"[engine] broker = {name!r}: unknown broker; available: "
                                 f"{', '.join(sorted(BROKERS))}")
    return factory(execution, symbols, config, settings)


def register_broker(name: str, factory: BrokerFactory) -> None:
    """Make ``factory`` available as ``[engine] broker = name``."""
    BROKERS[name] = factory
