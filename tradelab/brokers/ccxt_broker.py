"""``CcxtBroker``: the broker contract over the real ccxt client (verified against Binance spot).

REST through the sync ``ccxt.<exchange>`` client (``enableRateLimit`` on), the
order stream through ccxt.pro ``watch_orders`` in a background thread
(:mod:`tradelab.brokers.ccxt_stream`), reports mapped by
:mod:`tradelab.brokers.ccxt_reports`.

Pointing it somewhere (credentials from ``TRADELAB_CCXT_API_KEY`` /
``TRADELAB_CCXT_SECRET`` unless passed)::

    # the Binance-protocol simulator (tradelab venue-sim binance --port 9100 ...)
    CcxtBroker("binance", rest_url="http://127.0.0.1:9100", ws_url="ws://127.0.0.1:9100",
               symbols=["BTC/USDT"])
    # Binance spot testnet (keys from testnet.binance.vision)
    CcxtBroker("binance", sandbox=True, symbols=["BTC/USDT"])
    # production
    CcxtBroker("binance", symbols=["BTC/USDT"])
    # bars from the same simulator: CcxtFeed("binance", "BTC/USDT", urls=rest, ws_urls=ws)
    rest, ws = loopback_urls("binance", "http://127.0.0.1:9100", "ws://127.0.0.1:9100")

Contract details:

* ``submit`` sends the client order id (``clientOrderId``; Binance
  ``newClientOrderId``). A duplicate-id refusal means the venue has the order:
  it is queried and its venue id returned. Only the venue's definitive refusals
  (invalid order, insufficient funds, bad symbol, bad request, authentication)
  raise ``BrokerRejectedError`` (with the venue's code); a timeout, a lost or
  unparseable answer, a 5xx or anything unclassified raises ``TransientBrokerError``
  (the order is *pending* and resolved by :meth:`CcxtBroker.query`). 429/418 and
  "too many requests" are not processed by the venue: they are retried after a
  jittered back-off that honours ``Retry-After`` (``rate_limit_retries`` times).
* Order types market, limit and stop (stop-market, ccxt ``triggerPrice``); time
  in force gtc (``day`` is sent as GTC: crypto markets have no session).
* ``positions()`` on spot are the base-asset balances of the traded symbols;
  ``rules(symbol).shortable`` is False on spot; with ``margin=True`` a market that
  allows margin is shortable and its orders go to cross margin (not verified: the
  simulator has no margin account, and positions still read spot balances).
* Fees are reported in the quote currency (a base-asset fee is valued at the fill
  price); a fee in a third asset (BNB) is reported in that asset's units.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, TypeVar

import structlog

from tradelab.brokers.ccxt_reports import dec, loopback_urls, rest_report, rules_from_market
from tradelab.brokers.ccxt_stream import OrderStream
from tradelab.data.ccxt_urls import point_at
from tradelab.monitor.redact import register_secret
from tradelab.orders.brokers import (
    BrokerRejectedError,
    OrderReport,
    TransientBrokerError,
    VenueBalance,
    VenueRuleDenied,
)
from tradelab.orders.rules import VenueRules

log = structlog.get_logger("tradelab.brokers.ccxt")
T = TypeVar("T")
_TIF = {"gtc": "GTC", "day": "GTC", "ioc": "IOC", "fok": "FOK"}


def _definitive(exc: Exception) -> bool:
    """The venue's own refusal (nothing was placed, and sending again would not change it)."""
    import ccxt

    if isinstance(exc, ccxt.InvalidNonce | ccxt.NetworkError):
        return False
    return isinstance(exc, ccxt.InvalidOrder | ccxt.InsufficientFunds | ccxt.BadSymbol | ccxt.BadRequest
                      | ccxt.AuthenticationError | ccxt.PermissionDenied | ccxt.AccountSuspended
                      | ccxt.NotSupported | ccxt.ArgumentsRequired)


def _code(exc: Exception) -> str:
    text = str(exc)
    i = text.find('"code":')
    if i < 0:
        return type(exc).__name__
    return text[i + 7:].split(",")[0].split("}")[0].strip()


class CcxtBroker:
    """A ccxt exchange as a :class:`~tradelab.interfaces.Broker`.

    Parameters
    ----------
    exchange_id
        The ccxt id (``binance``).
    api_key, secret
        Credentials; default ``TRADELAB_CCXT_API_KEY`` / ``TRADELAB_CCXT_SECRET``.
    rest_url, ws_url
        Replace the scheme and host of every REST / websocket URL (a simulator).
    symbols
        The traded symbols (positions, stream catch-up).
    timeout
        Seconds before a REST request counts as lost.
    options
        Merged into the ccxt client's ``options``.
    sandbox
        ccxt's sandbox mode (Binance spot testnet).
    stream
        Start the ``watch_orders`` thread (False: ``poll`` returns nothing).
    rate_limit_retries, backoff
        Retries after a 429 and the base of the jittered exponential back-off (s).
    margin
        Trade on cross margin (``marginMode="cross"``) where the market allows it:
        those markets are then ``shortable``. Off by default: spot is long-only.
    resync
        Seconds of stream silence after which open orders are re-read over REST.
    """

    name = "ccxt"
    simulated = False

    def __init__(self, exchange_id: str, *, api_key: str | None = None, secret: str | None = None,
                 rest_url: str | None = None, ws_url: str | None = None, symbols: Iterable[str] = (),
                 timeout: float = 10.0, options: dict[str, Any] | None = None, sandbox: bool = False,
                 stream: bool = True, rate_limit_retries: int = 5, backoff: float = 0.5,
                 margin: bool = False, resync: float = 30.0) -> None:
        import ccxt

        api_key = api_key or os.environ.get("TRADELAB_CCXT_API_KEY")
        secret = secret or os.environ.get("TRADELAB_CCXT_SECRET")
        register_secret(api_key)
        register_secret(secret)
        self.exchange_id, self.symbols = exchange_id, list(symbols)
        self.rest_url, self.ws_url, self.sandbox = rest_url, ws_url, sandbox
        self.rate_limit_retries, self.backoff, self.margin = rate_limit_retries, backoff, margin
        opts = {"warnOnFetchOpenOrdersWithoutSymbol": False, **(options or {})}
        self._config = {"apiKey": api_key, "secret": secret, "enableRateLimit": True,
                        "timeout": int(timeout * 1000), "options": opts}
        self.rest = self._configure(getattr(ccxt, exchange_id)(dict(self._config)))
        self._markets: dict[str, Any] | None = None
        self._open: dict[str, str] = {}  # client id → symbol of orders not known to be closed
        self.rate_limited = 0
        self._lock = threading.RLock()  # one REST call at a time (the stream thread catches up too)
        self.stream = OrderStream(self._pro_client, self._catch_up, self._complete,
                                  self._market, resync) if stream else None

    def __repr__(self) -> str:
        return f"CcxtBroker({self.exchange_id!r}, rest_url={self.rest_url!r}, symbols={self.symbols!r})"

    def _configure(self, client: Any) -> Any:
        if self.sandbox:
            client.set_sandbox_mode(True)
        return point_at(client, self.rest_url, self.ws_url)

    def _pro_client(self) -> Any:
        import ccxt.pro

        client = self._configure(getattr(ccxt.pro, self.exchange_id)(dict(self._config)))
        markets = self._markets_or_none()
        if markets is not None:
            client.set_markets(list(markets.values()))
        return client

    def close(self) -> None:
        """Stop the order stream."""
        if self.stream is not None:
            self.stream.stop()

    # -- calling the venue --------------------------------------------------------
    def _call(self, fn: Callable[[], T], what: str) -> T:
        """``fn()`` with 429 back-off; ccxt errors become tradelab's (definitive or transient)."""
        import ccxt

        for attempt in range(self.rate_limit_retries + 1):
            try:
                with self._lock:
                    return fn()
            except (ccxt.DDoSProtection, ccxt.RateLimitExceeded) as exc:
                self.rate_limited += 1
                if attempt == self.rate_limit_retries:
                    raise TransientBrokerError(f"{what}: rate limited ({exc})") from exc
                headers = {k.lower(): v for k, v in (self.rest.last_response_headers or {}).items()}
                try:
                    after = float(headers.get("retry-after", 0))
                except ValueError:
                    after = 0.0
                delay = max(after, self.backoff * 2 ** attempt)
                delay += random.uniform(0, 0.25 * delay)
                log.warning("venue_rate_limited", what=what, retry_in=round(delay, 2))
                time.sleep(delay)
            except ccxt.OrderNotFound:
                raise
            except ccxt.BaseError as exc:
                if _definitive(exc):
                    raise BrokerRejectedError(f"{what}: {exc}", _code(exc)) from exc
                raise TransientBrokerError(f"{what}: {exc}") from exc
            except (ValueError, KeyError, TypeError) as exc:  # an answer ccxt could not parse
                raise TransientBrokerError(f"{what}: unparseable answer ({exc})") from exc
        raise AssertionError("unreachable")

    def _markets_or_none(self) -> dict[str, Any] | None:
        return self._markets

    def markets(self) -> dict[str, Any]:
        """The venue's markets, loaded once and cached."""
        if self._markets is None:
            self._markets = self._call(self.rest.load_markets, "load markets")
        return self._markets

    def _market(self, symbol: str) -> dict[str, Any] | None:
        return (self._markets or {}).get(symbol)

    # -- the broker contract --------------------------------------------------------
    def rules(self, symbol: str) -> VenueRules | None:
        """The market's lot, tick and minimums (``None`` for a symbol the venue does not list)."""
        market = self.markets().get(symbol)
        if market is None:
            return None
        shortable = self.margin and bool(market.get("margin"))
        return rules_from_market(symbol, market, self.rest.precisionMode, shortable=shortable)

    def submit(self, order: Any) -> str:
        """Send ``order`` under its client id; the venue's order id (see the module docstring)."""
        import ccxt

        if order.quantity is None:
            raise VenueRuleDenied(f"{order.client_order_id}: a live order needs its quantity before submit")
        self.markets()
        cid, symbol = order.client_order_id, order.symbol
        params: dict[str, Any] = {"clientOrderId": cid}
        if self.margin and (self.markets().get(symbol) or {}).get("margin"):
            params["marginMode"] = "cross"
        kind, price = order.order_type, None
        if kind == "limit":
            price = float(order.limit_price)
            params["timeInForce"] = _TIF.get(order.time_in_force, "GTC")
        elif kind == "stop":
            params["triggerPrice"] = float(order.stop_price)
        self._open[cid] = symbol
        try:
            placed = self._call(lambda: self.rest.create_order(
                symbol, "limit" if kind == "limit" else "market", order.side,
                float(order.quantity), price, dict(params)), f"submit {cid}")
        except BrokerRejectedError as exc:
            if "Duplicate order" in str(exc) or isinstance(exc.__cause__, ccxt.DuplicateOrderId):
                report = self.query(cid)
                if report is not None:
                    return report.venue_order_id
                raise TransientBrokerError(f"submit {cid}: duplicate id, but the venue cannot find it") \
                    from exc
            self._open.pop(cid, None)
            raise
        except ccxt.OrderNotFound as exc:
            raise TransientBrokerError(f"submit {cid}: {exc}") from exc
        venue_id = placed.get("id") if isinstance(placed, dict) else None
        if not venue_id:
            raise TransientBrokerError(f"submit {cid}: the answer carries no order id")
        return str(venue_id)

    def _symbols_for(self, client_order_id: str) -> list[str]:
        """Where to look for an order (the venue wants its symbol). With none to try, the
        answer is unknown, never "not found": a "not found" would make the order be re-sent."""
        known = self._open.get(client_order_id)
        symbols = [known] if known else list(self.symbols)
        if not symbols:
            raise TransientBrokerError(f"{client_order_id}: no symbol to look it up under "
                                       "(give CcxtBroker its symbols)")
        return symbols

    def query(self, client_order_id: str) -> OrderReport | None:
        """The venue's view of one order (with its trades when something filled); ``None``
        only when the venue says it has never seen the id."""
        import ccxt

        for symbol in self._symbols_for(client_order_id):
            try:
                order = self._call(lambda s=symbol: self.rest.fetch_order(  # type: ignore[misc]
                    None, s, {"origClientOrderId": client_order_id}), f"query {client_order_id}")
            except ccxt.OrderNotFound:
                continue
            return self._report(order)
        return None

    def _report(self, order: dict[str, Any]) -> OrderReport:
        """A REST report, with the order's trades when something filled (fees, last execution)."""
        symbol = str(order.get("symbol"))
        trades = None
        if dec(order.get("filled")) > 0:
            trades = self._call(lambda: self.rest.fetch_my_trades(
                symbol, params={"orderId": order.get("id")}), "trades")
        report = rest_report(order, trades, self._market(symbol))
        if not report.is_open:
            self._open.pop(report.client_order_id, None)
        return report

    def cancel(self, client_order_id: str) -> bool:
        """Ask the venue to cancel; False when it no longer has the order open."""
        import ccxt

        for symbol in self._symbols_for(client_order_id):
            try:
                self._call(lambda s=symbol: self.rest.cancel_order(  # type: ignore[misc]
                    None, s, {"origClientOrderId": client_order_id}), f"cancel {client_order_id}")
            except ccxt.OrderNotFound:
                continue
            return True
        return False

    def open_orders(self) -> list[OrderReport]:
        """Every open order at the venue, ours and others'."""
        self.markets()
        orders = self._call(lambda: self.rest.fetch_open_orders(), "open orders")
        return [rest_report(o, None, self._market(str(o.get("symbol")))) for o in orders]

    def balances(self) -> dict[str, VenueBalance]:
        """Free and locked amount of every asset."""
        raw = self._call(lambda: self.rest.fetch_balance(), "balances")
        exact = (raw.get("info") or {}).get("balances") if isinstance(raw.get("info"), dict) else None
        if isinstance(exact, list):  # Binance's own strings: exact decimals
            return {r["asset"]: VenueBalance(r["asset"], dec(r.get("free")), dec(r.get("locked")))
                    for r in exact if isinstance(r, dict) and "asset" in r}
        out = {}
        for asset, row in raw.items():
            if isinstance(row, dict) and "free" in row and asset not in ("info", "free", "used", "total"):
                out[asset] = VenueBalance(asset, dec(row.get("free")), dec(row.get("used")))
        return out

    def positions(self) -> dict[str, Decimal]:
        """Base-asset holdings of the traded symbols (spot: nothing is ever negative)."""
        bal = self.balances()
        markets = self.markets()
        out = {}
        for symbol in self.symbols:
            base = (markets.get(symbol) or {}).get("base")
            if base and base in bal and bal[base].total != 0:
                out[symbol] = bal[base].total
        return out

    def poll(self) -> list[OrderReport]:
        """Reports the order stream (and its catch-ups) produced since the last call."""
        reports = self.stream.drain() if self.stream is not None else []
        for r in reports:
            if not r.is_open:
                self._open.pop(r.client_order_id, None)
        return reports

    # -- stream support -------------------------------------------------------------
    def _catch_up(self) -> list[OrderReport]:
        """Fresh reports of every order we know to be open, then of the venue's open orders."""
        out = []
        for cid in list(self._open):
            report = self.query(cid)
            if report is not None:
                out.append(report)
        seen = {r.client_order_id for r in out}
        out.extend(r for r in self.open_orders() if r.client_order_id not in seen)
        return out

    def _complete(self, report: OrderReport) -> OrderReport | None:
        fuller = self.query(report.client_order_id)
        if fuller is None or fuller.cum_quantity < report.cum_quantity:
            return None
        return fuller


__all__ = ["CcxtBroker", "loopback_urls"]
