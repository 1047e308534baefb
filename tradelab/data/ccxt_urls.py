"""Pointing a ccxt client at another host: a testnet, a local mirror or ``tradelab venue-sim``.

ccxt keeps an exchange's endpoints in ``client.urls["api"]`` (a tree of URLs, the
websocket ones under ``"ws"``). Replacing only their scheme and host keeps every
path exactly as the exchange (and so ccxt) expects; nothing else in the client
changes, which is what lets the unmodified client talk to a simulator.
"""

from __future__ import annotations

import re
from typing import Any

_HOST = re.compile(r"^[a-z]+://[^/]+")


def override_urls(urls: Any, base: str) -> Any:
    """``urls`` (a ccxt ``urls['api']`` tree) with every URL's scheme and host replaced by ``base``."""
    if isinstance(urls, str):
        return _HOST.sub(base.rstrip("/"), urls) if _HOST.match(urls) else urls
    if isinstance(urls, dict):
        return {k: override_urls(v, base) for k, v in urls.items()}
    return urls


def point_at(client: Any, rest_url: str | None, ws_url: str | None) -> Any:
    """Send ``client``'s REST calls to ``rest_url`` and its websockets to ``ws_url`` (each optional)."""
    api = client.urls.get("api", {})
    if rest_url:
        api = {k: (v if k == "ws" else override_urls(v, rest_url)) for k, v in api.items()}
    if ws_url and isinstance(api.get("ws"), dict | str):
        api["ws"] = override_urls(api["ws"], ws_url)
    client.urls["api"] = api
    return client


__all__ = ["override_urls", "point_at"]
