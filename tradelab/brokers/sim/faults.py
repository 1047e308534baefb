"""Fault injection for the venue simulators: the ``--faults SPEC`` grammar.

Grammar
-------
``SPEC`` is a comma-separated list of ``name=value`` items, e.g.::

    drop_ack=once,http429=3@order,http5xx=1,dup_events=0.2,reorder=0.2,
    disconnect_after=5,delay_fill=2,reject_min_notional=1,restart_after=4,retry_after=1

Values of the *occurrence* faults (``drop_ack``, ``http429``, ``http5xx``,
``dup_events``, ``reorder``, ``reject_min_notional``):

* ``once`` (= 1), or an integer ``N``: the next ``N`` occasions fault, then no more;
* ``always``: every occasion;
* a number with a decimal point in ``(0, 1)``: each occasion faults with that
  probability, drawn from a generator seeded by ``--seed`` (deterministic);
* an optional ``@order`` suffix limits ``http429``/``http5xx`` to order requests
  (place, cancel, query), else they hit any venue request.

Countdown faults fire once when their counter reaches zero:

* ``disconnect_after=N``: the user-data stream connections are closed after the
  next ``N`` events were pushed (clients reconnect);
* ``restart_after=N``: after the next ``N`` accepted orders the simulator saves
  its state and exits with :data:`RESTART_EXIT_CODE` (the harness or a
  supervisor loop starts it again with the same ``--state FILE``; in-process it
  restarts its server on the same port).

Parameters:

* ``delay_fill=N``: the next order accepted does not match for ``N`` bars;
* ``retry_after=S``: the ``Retry-After`` seconds of a 429 answer (default 1).

Occasions:

``drop_ack``
    an order is accepted by the book, then the HTTP connection is closed without
    an answer (the client cannot know the outcome);
``http429`` / ``http5xx``
    the request is answered with the venue's rate-limit / server error and *not*
    processed;
``dup_events`` / ``reorder``
    a stream event is sent twice / held back and sent after the next one;
``reject_min_notional``
    an order is refused with the venue's min-notional filter failure.

At runtime ``POST /_sim/faults`` (body: a SPEC) merges items into the plan,
``DELETE /_sim/faults`` clears it, ``GET /_sim/faults`` shows what is left.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

OCCURRENCE = ("drop_ack", "http429", "http5xx", "dup_events", "reorder", "reject_min_notional")
COUNTDOWN = ("disconnect_after", "restart_after")
PARAMS = ("delay_fill", "retry_after")
NAMES = OCCURRENCE + COUNTDOWN + PARAMS
#: Exit status of a simulator process restarting itself (state kept).
RESTART_EXIT_CODE = 75


class FaultSpecError(ValueError):
    """A ``--faults`` SPEC that does not parse."""


@dataclass(slots=True)
class _Rule:
    count: int | None = None          # occasions left (None: unlimited / probabilistic)
    probability: float | None = None  # per occasion
    scope: str = "any"


def parse(spec: str) -> dict[str, Any]:
    """Parse a SPEC into ``{name: _Rule | int | float}`` (raising :class:`FaultSpecError`)."""
    out: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in (spec or "").split(","))):
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or name not in NAMES:
            raise FaultSpecError(f"unknown fault item {item!r} (known: {', '.join(NAMES)})")
        try:
            if name in OCCURRENCE:
                value, _, scope = value.partition("@")
                if scope not in ("", "order", "any"):
                    raise FaultSpecError(f"{item!r}: scope must be @order or @any")
                if value == "always":
                    rule = _Rule(scope=scope or "any")
                elif "." in value:
                    p = float(value)
                    if not 0 < p < 1:
                        raise FaultSpecError(f"{item!r}: a probability is in (0, 1)")
                    rule = _Rule(probability=p, scope=scope or "any")
                else:
                    rule = _Rule(count=1 if value == "once" else int(value), scope=scope or "any")
                out[name] = rule
            elif name == "retry_after":
                out[name] = float(value)
            else:
                out[name] = int(value)
        except ValueError as exc:
            if isinstance(exc, FaultSpecError):
                raise
            raise FaultSpecError(f"{item!r}: bad value") from exc
    return out


class FaultPlan:
    """The faults a simulator injects, consumed as occasions arise (thread-safe).

    Parameters
    ----------
    spec
        A SPEC (see the module docstring); empty for none.
    seed
        Seeds the generator behind probabilistic faults.
    """

    def __init__(self, spec: str = "", seed: int = 0) -> None:
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.items: dict[str, Any] = {}
        #: How many times each fault fired (tests and the demo print it).
        self.fired: dict[str, int] = {}
        self.update(spec)

    def update(self, spec: str) -> None:
        """Merge the items of ``spec`` into the plan (same names are replaced)."""
        parsed = parse(spec)
        with self.lock:
            self.items.update(parsed)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()

    def _fire(self, name: str) -> bool:
        self.fired[name] = self.fired.get(name, 0) + 1
        return True

    def take(self, name: str, scope: str = "any") -> bool:
        """True when this occasion of ``name`` faults (consuming one count)."""
        with self.lock:
            rule = self.items.get(name)
            if rule is None or (rule.scope == "order" and scope != "order"):
                return False
            if rule.probability is not None:
                return self._fire(name) if self.rng.random() < rule.probability else False
            if rule.count is None:
                return self._fire(name)
            if rule.count <= 0:
                return False
            rule.count -= 1
            if rule.count == 0:
                del self.items[name]
            return self._fire(name)

    def countdown(self, name: str) -> bool:
        """Count one event toward ``name`` (a countdown fault); True once when it fires."""
        with self.lock:
            left = self.items.get(name)
            if left is None:
                return False
            if left <= 1:
                del self.items[name]
                return self._fire(name)
            self.items[name] = left - 1
            return False

    def pop(self, name: str) -> int | float | None:
        """Take a one-shot parameter (``delay_fill``) out of the plan."""
        with self.lock:
            value = self.items.pop(name, None)
            if value is not None:
                self._fire(name)
            return value

    def get(self, name: str, default: float) -> float:
        """A standing parameter (``retry_after``)."""
        with self.lock:
            value = self.items.get(name)
            return default if value is None else float(value)

    def describe(self) -> dict[str, Any]:
        """What is left, as JSON-able values, plus ``fired`` counts."""
        with self.lock:
            left: dict[str, Any] = {}
            for name, value in self.items.items():
                if isinstance(value, _Rule):
                    left[name] = {"count": value.count, "probability": value.probability,
                                  "scope": value.scope}
                else:
                    left[name] = value
            return {"faults": left, "fired": dict(self.fired)}


__all__ = ["NAMES", "RESTART_EXIT_CODE", "FaultPlan", "FaultSpecError", "parse"]
