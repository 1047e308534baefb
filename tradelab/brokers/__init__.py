"""Live venue adapters behind the one broker contract (:class:`tradelab.interfaces.Broker`).

``ccxt_broker`` (exchange-generic, verified against Binance spot) and
``alpaca_broker`` (alpaca-py); ``sim`` holds the venue simulators that speak each
venue's wire protocol on loopback. The paper broker is :mod:`tradelab.orders.brokers.paper`.
"""
