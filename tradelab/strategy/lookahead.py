"""Look-ahead and window checks.

*Look-ahead*: signals on the full history must equal signals computed on each
prefix; a strategy that peeks at future bars changes its past signals when bars
are appended. *Window*: the signal at bar *t* computed from only the last
``warmup`` bars must equal the full-history one; this is what lets the live
engine evaluate a rolling window and still match research (parity).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tradelab.strategy.base import Strategy


@dataclass(frozen=True)
class Offense:
    """The first bar whose signal differs, and how."""

    check: str            # "lookahead" or "window"
    bar: pd.Timestamp
    position: int
    flag: str             # "entries", "exits", "short_entries", "short_exits", "sl_stop", "tp_stop"
    full: bool | float    # a flag, or a per-bar stop fraction (NaN: none)
    partial: bool | float
    prefix_end: pd.Timestamp
    hint: str = ""        # what to do about it (window offenses)

    def __str__(self) -> str:
        what = ("signal changes when later bars are added" if self.check == "lookahead"
                else "signal differs when computed from the last `warmup` bars only")
        text = (f"{self.check}: {self.flag} at bar {self.position} ({self.bar:%Y-%m-%d %H:%M}) "
                f"is {self.full} on full history but {self.partial} with data ending "
                f"{self.prefix_end:%Y-%m-%d %H:%M}: {what}")
        return f"{text}\n  {self.hint}" if self.hint else text


def _source(strategy: Strategy) -> str:
    cls = type(strategy)
    for obj in (inspect.getmodule(cls), cls):
        try:
            return inspect.getsource(obj) if obj is not None else ""
        except (OSError, TypeError):  # defined in a REPL or generated
            continue
    return ""


def window_hint(strategy: Strategy, warmup: int) -> str:
    """What to do when the window check fails, naming pandas ``ewm`` when the source uses it."""
    text = (f"the signal at bar t depends on bars older than warmup={warmup}. Declare a "
            "`warmup` covering every bar the last signal reads. Recursive indicators "
            "(ema, atr, macd, rsi_wilder) need warmup >= their convergence window: use "
            "tradelab.strategy.indicators.ema/atr/macd/rsi_wilder and declare warmup = "
            "ema_warmup(n) (7n+6), atr_warmup(n) / rsi_wilder_warmup(n) (13n+1) or "
            "macd_warmup(fast, slow, signal) (256 for 12/26/9), plus any shift.")
    src = _source(strategy)
    if re.search(r"\.ewm\s*\(", src):
        text += (" This strategy calls pandas `ewm`, which is the likely cause: an ewm over "
                 "the whole history depends on every past bar, so no warmup can reproduce "
                 "it from a window; replace it with tradelab.strategy.indicators.ema "
                 "(seeded on a fixed trailing window) and declare ema_warmup(span).")
    elif re.search(r"\.(cumsum|cumprod|expanding)\s*\(", src):
        text += (" This strategy uses a cumulative/expanding computation (cumsum, cumprod, "
                 "expanding), which depends on every past bar: use a rolling window instead.")
    return text


@dataclass(frozen=True)
class LookAheadReport:
    strategy: str
    params: dict
    bars: int
    prefixes_checked: int
    windows_checked: int
    offenses: list[Offense] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.offenses

    @property
    def first(self) -> Offense | None:
        return min(self.offenses, key=lambda o: o.position) if self.offenses else None

    def __str__(self) -> str:
        head = (f"{self.strategy} {self.params}: {self.prefixes_checked} prefixes and "
                f"{self.windows_checked} windows over {self.bars} bars")
        return f"{head}: OK" if self.ok else f"{head}: FAILED\n  first offense: {self.first}"


def _first_diff(a: pd.Series, b: pd.Series) -> int | None:
    x, y = a.to_numpy(), b.to_numpy()
    differ = x != y
    if x.dtype.kind == "f":  # stop fractions: NaN (no stop) equals NaN
        differ &= ~(np.isnan(x) & np.isnan(y))
    diff = np.flatnonzero(differ)
    return int(diff[0]) if diff.size else None


def _value(series: pd.Series, pos: int) -> bool | float:
    value = series.iloc[pos]
    return float(value) if series.dtype.kind == "f" else bool(value)


def _same(a: bool | float, b: bool | float) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float)
                      and np.isnan(a) and np.isnan(b))


#: What the check compares: the flags, and short flags and stop fractions when given.
CHECKED = ("entries", "exits", "short_entries", "short_exits", "sl_stop", "tp_stop")


def check_lookahead(strategy: Strategy, bars: pd.DataFrame, samples: int = 40,
                    seed: int = 0) -> LookAheadReport:
    """Compare full-history signals with signals on sampled prefixes and windows.

    Parameters
    ----------
    strategy
        One parameter set (not a batch).
    bars
        History to test on (contract bars).
    samples
        Number of prefix ends (and window ends) tried, spread over the history
        plus random ones; the last bars are always included.

    Raises
    ------
    ValueError
        ``bars`` hold fewer bars than the strategy's ``warmup``.
    """
    n = len(bars)
    warmup = max(int(strategy.warmup), 1)
    if n < warmup:
        # No prefix or window of `warmup` bars exists: nothing could be compared.
        raise ValueError(f"{strategy.name}: {n} bar(s) are too few to check; it reads {warmup} "
                         "bars (its warmup): give a longer history (e.g. widen --start/--end)")
    full = strategy.generate(bars)
    rng = np.random.default_rng(seed)
    spread = np.linspace(warmup, n, num=min(samples, max(n - warmup, 1)), dtype=int)
    ends = sorted(set(spread.tolist()) | set(rng.integers(warmup, n + 1, size=samples // 2).tolist())
                  | {n - 1, n})
    ends = [e for e in ends if warmup <= e <= n]
    offenses: list[Offense] = []
    # Short flags and per-bar stop levels decide orders too: a stop fraction that peeks
    # ahead is look-ahead like an entry that does.
    checked = [f for f in CHECKED if getattr(full, f) is not None]
    for end in ends:
        part = strategy.generate(bars.iloc[:end])
        for flag in checked:
            if getattr(part, flag) is None:
                raise ValueError(f"{strategy.name}.signals returned {flag} on the full history "
                                 f"but not on bars ending {bars.index[end - 1]}")
            pos = _first_diff(getattr(full, flag).iloc[:end], getattr(part, flag))
            if pos is not None:
                offenses.append(Offense("lookahead", bars.index[pos], pos, flag,
                                        _value(getattr(full, flag), pos),
                                        _value(getattr(part, flag), pos), bars.index[end - 1]))
        # The live engine sees only the last `warmup` bars: the last signal must agree.
        window = strategy.generate(bars.iloc[end - warmup:end])
        for flag in checked:
            if getattr(window, flag) is None:
                raise ValueError(f"{strategy.name}.signals returned {flag} on the full history "
                                 f"but not on its last {warmup} bars")
            want = _value(getattr(full, flag), end - 1)
            got = _value(getattr(window, flag), len(window.entries) - 1)
            if not _same(want, got):
                offenses.append(Offense("window", bars.index[end - 1], end - 1, flag, want, got,
                                        bars.index[end - 1], window_hint(strategy, warmup)))
        if offenses:
            break
    return LookAheadReport(strategy.name, strategy.params, n, len(ends), len(ends), offenses)
