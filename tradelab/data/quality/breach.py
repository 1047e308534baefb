"""A breached ``[data.quality]`` threshold, described precisely.

Its own module, below both :mod:`~tradelab.data.quality.gate` (which finds breaches)
and :mod:`~tradelab.data.quality.events` (whose ``QualityBreached`` carries one), so
neither of those has to import the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def number_text(value: float) -> str:
    """A threshold or observed value as text: integers without decimals."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"


@dataclass(frozen=True, slots=True)
class Breach:
    """One breached threshold.

    Attributes
    ----------
    threshold
        The setting's name, e.g. ``max_rejected`` or ``max_rejected_by_reason.not_json``.
    limit, observed
        The configured value and what was observed.
    what
        What was measured (``rejected messages``, ``gaps``...).
    breakdown
        ``(reason, count)`` pairs behind ``observed``, largest first.
    note
        Extra context (e.g. ``31 of 100`` for a fraction, the first gap).
    """

    threshold: str
    limit: float
    observed: float
    source: str
    symbol: str
    what: str
    op: str = ">"
    breakdown: tuple[tuple[str, int], ...] = ()
    note: str = ""
    count: int | None = None  # what the stored row's count says (default: observed, rounded up)

    @property
    def stored_count(self) -> int:
        return self.count if self.count is not None else math.ceil(self.observed)

    @property
    def reason(self) -> str:
        """One line naming the measure, the observed value, the threshold and its limit."""
        extra = ", ".join(f"{r} {n}" for r, n in self.breakdown)
        if self.note:
            extra = f"{self.note}; {extra}" if extra else self.note
        text = (f"{self.what} {number_text(self.observed)} {self.op} {self.threshold} "
                f"{number_text(self.limit)}")
        return f"{text} ({extra})" if extra else text

    def __str__(self) -> str:
        return f"{self.source}:{self.symbol}: {self.reason}"


__all__ = ["Breach", "number_text"]
