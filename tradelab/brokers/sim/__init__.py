"""Venue simulators: real peers on loopback speaking a venue's own wire protocol.

The unmodified ccxt and alpaca-py clients talk to them (only their base URLs are
overridden). They replay bars, match orders against them, keep balances, and
inject faults on request (:mod:`tradelab.brokers.sim.faults`).
"""
