"""Exception hierarchy. Every error names the field and the offending value."""

from __future__ import annotations

import difflib


class TradelabError(Exception):
    """Base class for all tradelab errors."""


class ConfigError(TradelabError):
    """Invalid configuration; ``problems`` holds one line per bad field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(problems))


class DataValidationError(TradelabError):
    """Bars that break the contract under the ``raise`` policy."""

    def __init__(self, message: str, report: object | None = None) -> None:
        self.report = report
        super().__init__(message)


class DataSourceError(TradelabError):
    """A source could not provide the requested bars (unknown symbol, network, file)."""


class UnknownStrategyError(TradelabError, KeyError):
    """A strategy name that the registry does not know."""

    def __init__(self, name: str, available: list[str]) -> None:
        self.name = name
        self.available = available
        close = difflib.get_close_matches(name, available, n=1, cutoff=0.75)
        super().__init__(
            f"unknown strategy {name!r}"
            + (f" (did you mean {close[0]!r}?)" if close else "")
            + f"; available: {', '.join(available) or '(none)'}"
        )

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.args[0]


class DuplicateStrategyError(TradelabError):
    """Two plug-ins registered the same strategy name."""


class ParameterError(TradelabError, ValueError):
    """A strategy parameter that is unknown, of the wrong type or out of bounds."""


class LookAheadError(TradelabError):
    """A strategy whose signals change when future bars are added."""


class DataQualityError(TradelabError):
    """The data a run would start from breaks a ``[data.quality]`` threshold.

    ``breaches`` holds the :class:`tradelab.data.quality.Breach` objects (threshold,
    limit, observed value); the message names each of them.
    """

    def __init__(self, message: str, breaches: tuple[object, ...] = ()) -> None:
        self.breaches = breaches
        super().__init__(message)


class StoreFailure(TradelabError):
    """A durable write did not happen (database locked, disk full, connection lost, lease lost).

    ``cause`` is a short label for operators; the message says what was being written.
    Raised by the store's writers; the engine halts the run on it (fail closed).
    """

    def __init__(self, message: str, cause: str = "") -> None:
        self.cause = cause
        super().__init__(message)


class RunHalted(TradelabError):
    """A run stopped because a guarantee could not be kept; ``--resume`` continues it."""

    def __init__(self, run_id: object, reason: str) -> None:
        self.run_id, self.reason = run_id, reason
        super().__init__(f"run {run_id} halted: {reason} (resume with --resume {run_id} "
                         "once the cause is fixed)")


def halt_reason(exc: BaseException) -> str:
    """One line naming why a step failed, from the innermost tradelab error in the chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, StoreFailure):
            return str(seen)
        nxt = getattr(seen, "cause", None)
        seen = nxt if isinstance(nxt, BaseException) else seen.__cause__
    return f"{type(exc).__name__}: {exc}".splitlines()[0]
