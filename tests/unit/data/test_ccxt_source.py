"""CcxtSource against the real ccxt client talking to a local recorded-response server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest
from pydantic import SecretStr

from tests.loopback import JsonHandler
from tradelab.data.ccxt_source import CcxtSource, candles_to_bars
from tradelab.data.validate import contract_problems, validate_bars
from tradelab.errors import DataSourceError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "binance"
KLINES = json.loads((FIXTURES / "klines-ETHBTC-1m.json").read_text())
EXCHANGE_INFO = (FIXTURES / "exchangeInfo.json").read_bytes()


class _Binance(JsonHandler):
    """Answers like Binance spot: klines filtered by startTime and capped by limit."""

    requests: list[tuple[str, dict[str, str]]]

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.server.requests.append((url.path, query))  # type: ignore[attr-defined]
        if url.path == "/api/v3/exchangeInfo":
            self.send_json(200, EXCHANGE_INFO)
        elif url.path == "/api/v3/klines" and query.get("symbol") == "ETHBTC":
            since = int(query.get("startTime", 0))
            rows = [r for r in KLINES if r[0] >= since][: int(query.get("limit", 500))]
            self.send_json(200, json.dumps(rows).encode())
        else:
            self.send_json(400, b'{"code":-1121,"msg":"Invalid symbol."}')


@pytest.fixture()
def binance() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Binance)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _source(server: ThreadingHTTPServer, page_limit: int = 2) -> CcxtSource:
    host, port = server.server_address[:2]
    return CcxtSource(
        "binance", api_key=None, secret=None, timeout_ms=5000, page_limit=page_limit,
        urls={"public": f"http://{host}:{port}/api/v3"},
        # Spot markets only, no margin pairs: the server answers what Binance spot does.
        options={"fetchMarkets": {"types": ["spot"]}, "fetchMargins": False})


def test_load_paginates_with_since_over_two_pages(binance: ThreadingHTTPServer) -> None:
    src = _source(binance, page_limit=2)
    bars = src.load("ETH/BTC", start=pd.Timestamp("2020-06-06 21:22", tz="UTC"), interval="1m")

    assert contract_problems(bars) == []
    assert list(bars.index) == list(pd.to_datetime([r[0] for r in KLINES], unit="ms", utc=True))
    assert bars["close"].tolist() == [0.025, 0.025003, 0.025008]
    assert bars["volume"].iloc[2] == pytest.approx(154.142)
    klines = [q for path, q in binance.requests if path == "/api/v3/klines"]  # type: ignore[attr-defined]
    starts = [int(q["startTime"]) for q in klines]
    # page 1 (2 candles), page 2 from after the last candle (1 candle), then an empty page
    assert starts == [KLINES[0][0], KLINES[1][0] + 1, KLINES[2][0] + 1]
    assert all(q["limit"] == "2" and q["interval"] == "1m" for q in klines)


def test_load_stops_at_end_and_cuts_inclusively(binance: ThreadingHTTPServer) -> None:
    src = _source(binance, page_limit=2)
    end = pd.to_datetime(KLINES[1][0], unit="ms", utc=True)
    bars = src.load("ETH/BTC", start=pd.Timestamp("2020-06-06", tz="UTC"), end=end,
                    interval="1m")
    assert list(bars.index) == list(pd.to_datetime([KLINES[0][0], KLINES[1][0]], unit="ms",
                                                   utc=True))
    assert sum(path == "/api/v3/klines" for path, _ in binance.requests) == 1  # type: ignore[attr-defined]


def test_unknown_symbol_is_a_data_source_error(binance: ThreadingHTTPServer) -> None:
    with pytest.raises(DataSourceError, match=r"ccxt binance: could not load 'NOPE/BTC'"):
        _source(binance).load("NOPE/BTC", start="2020-06-06", interval="1m")


def test_unknown_interval_lists_available(binance: ThreadingHTTPServer) -> None:
    with pytest.raises(DataSourceError, match=r"interval '7x' not offered; available: .*1m"):
        _source(binance).load("ETH/BTC", interval="7x")


def test_unreachable_exchange_is_a_data_source_error() -> None:
    src = CcxtSource("binance", timeout_ms=2000, urls={"public": "http://127.0.0.1:9/api/v3"},
                     options={"fetchMarkets": {"types": ["spot"]}, "fetchMargins": False})
    with pytest.raises(DataSourceError, match=r"ccxt binance: could not load 'ETH/BTC'"):
        src.load("ETH/BTC", start="2020-06-06", interval="1m")


def test_secrets_never_appear_in_repr() -> None:
    src = CcxtSource("binance", api_key=SecretStr("k-123"), secret=SecretStr("s-456"))
    assert "k-123" not in repr(src) and "s-456" not in repr(src)
    assert src.client().apiKey == "k-123"  # but the client does get them


def test_candles_to_bars_keeps_duplicates_for_validation() -> None:
    rows = [[r[0], *map(float, r[1:6])] for r in (KLINES[0], KLINES[1], KLINES[1])]
    bars = candles_to_bars(rows)
    out, report = validate_bars(bars, "drop", source="ccxt", symbol="ETH/BTC")
    assert report.counts["duplicate"] == 1 and len(out) == 2
