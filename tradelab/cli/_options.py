"""The data and execution options every research and engine command takes, defined once.

``backtest``, ``sweep``, ``paper`` and ``parity`` declare a parameter typed
:class:`DataOptions` and/or :class:`ExecOptions` and are decorated with
:func:`with_options`: the decorator puts each field's option (``--csv``,
``--cash``, ...) on the command line and hands the command one frozen value per
group. Adding an option here adds it to every command.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, get_type_hints

import typer

if TYPE_CHECKING:
    import pandas as pd

    from tradelab.data.validate import ValidationReport
    from tradelab.execution import Execution
    from tradelab.strategy.base import Strategy
    from tradelab.strategy.exits import Direction, Stops

F = TypeVar("F", bound=Callable[..., Any])
POLICIES = ("raise", "drop", "fill")

#: ``--json``: one JSON object on stdout (every command that prints results).
JSON = typer.Option(False, "--json", help="print one JSON object")


def _opt(*decls: str, help: str) -> dict[str, Any]:
    """A dataclass field's metadata: its command-line option (default ``None``: configured)."""
    return {"option": typer.Option(None, *decls, help=help)}


@dataclass(frozen=True)
class DataOptions:
    """Which bars: a configured source (through the cache) or one CSV file, and the policy."""

    source: str | None = field(default=None, metadata=_opt(
        "--source", help="data source: sample, file, yfinance, ccxt (default [data] default_source)"))
    symbol: str | None = field(default=None, metadata=_opt(
        "--symbol", help="symbol (default [data] default_symbol; with --csv: the file's name)"))
    start: str | None = field(default=None, metadata=_opt(
        "--start", help="first bar (date/time, inclusive)"))
    end: str | None = field(default=None, metadata=_opt(
        "--end", help="last bar (date/time, inclusive)"))
    csv: Path | None = field(default=None, metadata=_opt(
        "--csv", help="read bars from this CSV file instead of a source"))
    policy: str | None = field(default=None, metadata=_opt(
        "--policy", help="raise | drop | fill: what validation does with bad rows (default [data] "
                         "policy); dropped and fixed rows are reported on stderr"))

    def check(self) -> None:
        """ValueError (one line) for a bad policy or a range that ends before it starts."""
        if self.policy is not None and self.policy not in POLICIES:
            raise ValueError(f"--policy {self.policy!r}: expected raise, drop or fill")
        import pandas as pd

        # Each bound on its own, so the message names the flag and the value that is wrong.
        bounds: dict[str, pd.Timestamp] = {}
        for flag, value in (("--start", self.start), ("--end", self.end)):
            if value is not None:
                try:
                    t = pd.Timestamp(value)
                except ValueError:
                    raise ValueError(f"{flag} {value!r}: not a date/time "
                                     "(e.g. 2010-01-04 or 2010-01-04T15:30)") from None
                # Naive times are UTC, like the bars: an aware and a naive bound still compare.
                bounds[flag] = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
        if len(bounds) == 2 and bounds["--start"] > bounds["--end"]:
            raise ValueError(f"--start {self.start} is after --end {self.end}")

    def load(self, tl: Any) -> Loaded:
        """Validated bars and the names shown in the output; ValueError on an empty range."""
        self.check()
        settings = tl.settings.data
        report: ValidationReport | None
        if self.csv is not None:
            from tradelab.data.files import FileSource
            from tradelab.data.validate import validate_bars

            raw = FileSource(Path.cwd(), adjust="raw").load(str(self.csv), start=self.start,
                                                            end=self.end)
            symbol, source = self.symbol or self.csv.stem, "file"
            bars, report = validate_bars(raw, self.policy or settings.policy_for("file"),
                                         source="file", symbol=str(self.csv),
                                         gap_factor=settings.gap_factor)
        else:
            symbol = self.symbol or settings.default_symbol
            source = self.source or settings.default_source
            bars = tl.data.load(symbol, source=source, start=self.start, end=self.end,
                                policy=self.policy)
            report = tl.data.last_report
        if len(bars) == 0:
            span = " and ".join(f"{k} {v}" for k, v in (("--start", self.start), ("--end", self.end))
                                if v is not None)
            raise ValueError(f"no bars for {symbol} from {source}" + (f" within {span}" if span else ""))
        loaded = Loaded(bars, symbol, source, report)
        loaded.print_report()
        return loaded


@dataclass(frozen=True)
class Loaded:
    """Bars as loaded for a command, with their validation report."""

    bars: pd.DataFrame
    symbol: str
    source: str
    report: ValidationReport | None = None

    def print_report(self) -> None:
        """Dropped, fixed or re-sorted rows are never silent: the report goes to stderr."""
        r = self.report
        if r is not None and (r.dropped or r.fixed or r.sorted or not r.ok):
            typer.echo(str(r), err=True)

    def quality(self) -> dict[str, Any]:
        """What validation did, for JSON output."""
        r = self.report
        if r is None:
            return {}
        return {"policy": r.policy, "rows_in": r.rows_in, "rows_out": r.rows_out,
                "dropped": r.dropped, "fixed": r.fixed, "issues": r.problems(), "gaps": r.gap_count}


@dataclass(frozen=True)
class ExecOptions:
    """Overrides of the execution convention (``[research]``); ``None`` keeps the configured value."""

    cash: float | None = field(default=None, metadata=_opt(
        "--cash", help="initial cash (default [research] cash)"))
    fees: float | None = field(default=None, metadata=_opt(
        "--fees", help="fees as a fraction of notional per order"))
    fixed_fees: float | None = field(default=None, metadata=_opt(
        "--fixed-fees", help="fixed fee per order, in cash"))
    slippage: float | None = field(default=None, metadata=_opt(
        "--slippage", help="slippage as a fraction of price, against the trader"))
    size: float | None = field(default=None, metadata=_opt(
        "--size", help="entry size (meaning depends on --size-type)"))
    size_type: str | None = field(default=None, metadata=_opt(
        "--size-type", help="amount | value | percent"))
    fill: str | None = field(default=None, metadata=_opt("--fill", help="next_open | close"))
    fractional: bool | None = field(default=None, metadata=_opt(
        "--fractional/--whole", help="fractional or whole units"))
    borrow_fee: float | None = field(default=None, metadata=_opt(
        "--borrow-fee", help="annual borrow fee of short positions as a fraction (e.g. 0.03), "
                             "charged when a short is bought back; simulated venues only"))

    def apply(self, base: Execution) -> Execution:
        """``base`` with the given options replaced (ValueError names a bad value)."""
        if self.borrow_fee is not None and not (self.borrow_fee >= 0
                                                and math.isfinite(self.borrow_fee)):
            raise ValueError(f"--borrow-fee {self.borrow_fee}: must be a rate >= 0 "
                             "(a fraction per year, e.g. 0.03)")
        given = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        return replace(base, **given) if given else base


@dataclass(frozen=True)
class TradeOptions:
    """Which side a strategy trades and the exits the framework applies for it.

    ``None`` keeps the strategy's own :attr:`~tradelab.strategy.base.Strategy.direction`
    and :attr:`~tradelab.strategy.base.Strategy.stops`. The same flags mean the same
    thing in ``backtest``, ``sweep``, ``paper``, ``parity`` and ``live``.
    """

    direction: str | None = field(default=None, metadata=_opt(
        "--direction", help="long | short | both (default: the strategy's own)"))
    sl: float | None = field(default=None, metadata=_opt(
        "--sl", help="stop-loss, a fraction of the entry fill price (e.g. 0.05)"))
    tp: float | None = field(default=None, metadata=_opt(
        "--tp", help="take-profit, a fraction of the entry fill price"))
    trail: float | None = field(default=None, metadata=_opt(
        "--trail", help="trailing stop, a fraction below the best price since entry "
                        "(replaces --sl)"))
    time_stop: int | None = field(default=None, metadata=_opt(
        "--time-stop", help="exit after holding this many bars"))

    def resolve(self, strategy: type[Strategy] | Strategy) -> tuple[Direction, Stops]:
        """The direction and stops to trade ``strategy`` with (ValueError names a bad value)."""
        from tradelab.strategy.exits import check_direction

        direction = check_direction(self.direction or strategy.direction)
        stops = strategy.stops.overridden(sl=self.sl, tp=self.tp, trail=self.trail,
                                          time_bars=self.time_stop)
        return direction, stops


def with_options(func: F) -> F:
    """Expand each :class:`DataOptions` / :class:`ExecOptions` / :class:`TradeOptions`
    parameter of a typer command into its options, and rebuild the dataclass from them
    when the command runs."""
    signature = inspect.signature(func)
    hints = get_type_hints(func)
    groups: dict[str, type] = {}
    params: list[inspect.Parameter] = []
    annotations: dict[str, Any] = {}
    for p in signature.parameters.values():
        kind = hints.get(p.name)
        if isinstance(kind, type) and is_dataclass(kind) and kind in (DataOptions, ExecOptions,
                                                                      TradeOptions):
            groups[p.name] = kind
            group_hints = get_type_hints(kind)
            for f in fields(kind):
                params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY,
                                                default=f.metadata["option"],
                                                annotation=group_hints[f.name]))
                annotations[f.name] = group_hints[f.name]
        else:
            params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY))
            annotations[p.name] = hints.get(p.name, p.annotation)

    @functools.wraps(func)
    def command(**kwargs: Any) -> Any:
        for name, kind in groups.items():
            kwargs[name] = kind(**{f.name: kwargs.pop(f.name) for f in fields(kind)})
        return func(**kwargs)

    command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    command.__annotations__ = annotations
    del command.__wrapped__  # typer must see the expanded signature, not the original
    return command  # type: ignore[return-value]


#: Placeholder defaults of the grouped parameters (``data: DataOptions = DATA``).
DATA = DataOptions()
EXEC = ExecOptions()
TRADE = TradeOptions()


def convention(ex: Execution, *, entry_size: bool = True) -> str:
    """One line describing an execution convention (``entry_size=False``: without the
    entry size, for a portfolio, whose weights size its book)."""
    return (f"cash {ex.cash:,.2f}, fees {ex.fees:g} + {ex.fixed_fees:g}/order, "
            f"slippage {ex.slippage:g}, " + (f"{entry_size_text(ex)}, " if entry_size else "")
            + f"fill {ex.fill}, {'fractional' if ex.fractional else 'whole'} units"
            + (f", borrow fee {ex.borrow_fee:g}/year on shorts" if ex.borrow_fee else ""))


def entry_size_text(ex: Execution) -> str:
    """The entry size in words: ``size 1 percent`` read as 1 %, but meant all the cash."""
    if ex.size_type == "percent":
        return f"entry size {ex.size * 100:g}% of cash"
    if ex.size_type == "value":
        return f"entry size {ex.size:,.2f} in cash"
    return f"entry size {ex.size:g} units"
