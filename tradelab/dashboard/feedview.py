"""The feed-health panel of the selected run as HTML (``data-testid`` marks its values)."""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any

_COLORS = {"ok": ("#dcfce7", "#166534"), "stale": ("#fee2e2", "#991b1b"),
           "no bars": ("#f3f4f6", "#374151")}


def duration(td: timedelta | None) -> str:
    """A short readable duration: ``45 s``, ``12 min``, ``3.5 h``, ``420 d``."""
    if td is None:
        return "–"
    secs = td.total_seconds()
    if secs < 120:
        return f"{secs:.0f} s"
    if secs < 7200:
        return f"{secs / 60:.0f} min"
    if secs < 172800:
        return f"{secs / 3600:.1f} h"
    return f"{secs / 86400:.0f} d"


def feed_html(feed: dict[str, Any]) -> str:
    """The panel for :func:`tradelab.dashboard.runextra.feed_health`'s dict (empty: no run)."""
    if not feed:
        return ("<div data-testid='feed-state' data-state='none' style='color:#6b7280'>"
                "No engine run selected.</div>")
    state = feed["state"]
    bg, fg = _COLORS.get(state, _COLORS["no bars"])
    last = feed["last_bar"]
    age = feed["age"]
    bad = sum(q["count"] for q in feed["quality"] if q["kind"] != "repaired")
    return (
        f"<div style='display:flex;flex-wrap:wrap;gap:18px;align-items:center;padding:4px 0'>"
        f"<span data-testid='feed-state' data-state='{html.escape(state)}' style='background:{bg};"
        f"color:{fg};font-weight:600;border-radius:6px;padding:3px 10px'>"
        f"{'● feed ' + html.escape(state).upper()}</span>"
        f"<span>last bar <b data-testid='feed-last-bar' data-at='"
        f"{last.isoformat() if last is not None else ''}'>"
        f"{f'{last:%Y-%m-%d %H:%M:%S} UTC' if last is not None else '–'}</b></span>"
        f"<span>age <b data-testid='feed-age' data-seconds='"
        f"{int(age.total_seconds()) if age is not None else ''}'>{duration(age)}</b></span>"
        f"<span>bars received <b data-testid='feed-bars'>{feed['bars']}</b></span>"
        f"<span>stale after <b data-testid='feed-threshold' data-seconds="
        f"'{int(feed['threshold'].total_seconds())}'>{duration(feed['threshold'])}</b>"
        f" (bar interval {duration(feed['interval'])})</span>"
        f"<span>data-quality events <b data-testid='feed-quality'>{bad}</b></span></div>")


__all__ = ["duration", "feed_html"]
