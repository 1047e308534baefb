"""Events the data-quality gate publishes on the engine's bus (engine thread only)."""

from __future__ import annotations

from dataclasses import dataclass

from tradelab.data.quality.breach import Breach
from tradelab.events import Event


@dataclass(frozen=True, slots=True)
class QualityRecorded(Event):
    """``count`` occurrences of one outcome (kind ``rejected``, ``dropped``, ``repaired``,
    ``gap`` or ``stale``) for one source and symbol."""

    source: str
    symbol: str
    kind: str
    reason: str
    count: int


@dataclass(frozen=True, slots=True)
class FeedStaleness(Event):
    """Seconds the engine waited for the latest fresh bar (or has waited, at a stale breach)."""

    source: str
    symbol: str
    seconds: float


@dataclass(frozen=True, slots=True)
class QualityBreached(Event):
    """A ``[data.quality]`` threshold was breached; ``action`` is ``halt`` or ``warn``."""

    breach: Breach
    action: str



__all__ = ["FeedStaleness", "QualityBreached", "QualityRecorded"]
