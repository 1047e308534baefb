"""The :class:`Strategy` base: typed parameters, a warmup, one vectorized causal method.

A strategy implements ``signals(bars)`` once. Research calls it on the whole
history, the live engine on a rolling window of ``warmup`` bars, and a sweep
calls it once with every parameter as an array (one element per combination)
when the strategy declares ``vectorized_params = True``. The indicator helpers
in :mod:`tradelab.strategy.indicators` broadcast over such arrays, so the same
code serves all three.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd

from tradelab.errors import ParameterError
from tradelab.strategy.exits import Direction, Stops

Scalar = int | float | bool


class Param:
    """A typed strategy parameter with a default and optional inclusive bounds.

    Declared as a class attribute; reading it on an instance gives the value::

        class SmaCross(Strategy):
            fast = Param(10, low=2, high=500, doc="fast SMA window")
    """

    def __init__(self, default: Scalar, low: float | None = None, high: float | None = None,
                 doc: str = "") -> None:
        self.kind: type = type(default)
        if self.kind not in (int, float, bool):
            raise TypeError(f"Param default must be int, float or bool, not {self.kind.__name__}")
        self.default = default
        self.low = low
        self.high = high
        self.doc = doc
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj._values[self.name]

    def __repr__(self) -> str:
        bounds = f", low={self.low}, high={self.high}" if self.kind is not bool else ""
        return f"Param({self.default!r}{bounds})"

    def coerce(self, value: Any, owner: str) -> Scalar:
        """Validate one value: right type (strings from the CLI are parsed) and in bounds."""
        where = f"{owner}.{self.name}"
        try:
            if self.kind is bool:
                if isinstance(value, str):
                    lowered = value.strip().lower()
                    if lowered not in {"true", "false", "1", "0", "yes", "no"}:
                        raise ValueError
                    out: Scalar = lowered in {"true", "1", "yes"}
                elif isinstance(value, (bool, np.bool_)):
                    out = bool(value)
                else:
                    raise ValueError
            elif self.kind is int:
                number = float(value) if isinstance(value, str) else value
                if isinstance(number, bool) or not float(number).is_integer():
                    raise ValueError
                out = int(number)
            else:
                if isinstance(value, bool):
                    raise ValueError
                out = float(value)
                if not math.isfinite(out):
                    raise ValueError
        except (TypeError, ValueError):
            raise ParameterError(
                f"{where} = {value!r}: expected {self.kind.__name__}") from None
        if self.low is not None and out < self.low:
            raise ParameterError(f"{where} = {out!r}: must be >= {self.low}")
        if self.high is not None and out > self.high:
            raise ParameterError(f"{where} = {out!r}: must be <= {self.high}")
        return out


class Signals(NamedTuple):
    """Entry and exit flags aligned with the bars.

    Series for one parameter set; DataFrames (one column per combination) in a sweep.
    ``entries``/``exits`` are read under the strategy's direction (see
    :mod:`tradelab.strategy.exits`); ``short_entries``/``short_exits``, when given,
    state the short side explicitly (``entries``/``exits`` are then the long side).
    ``sl_stop``/``tp_stop``: optional per-bar stop fractions (e.g. ``2 * atr / close``)
    read at the bar an entry is decided on, overriding the strategy's declared
    :class:`~tradelab.strategy.exits.Stops`.
    """

    entries: pd.Series | pd.DataFrame
    exits: pd.Series | pd.DataFrame
    short_entries: pd.Series | pd.DataFrame | None = None
    short_exits: pd.Series | pd.DataFrame | None = None
    sl_stop: pd.Series | pd.DataFrame | None = None
    tp_stop: pd.Series | pd.DataFrame | None = None


@dataclass(frozen=True)
class ParamSpec:
    """A parameter as published to the CLI, the API and the docs."""

    name: str
    kind: str
    default: Scalar
    low: float | None
    high: float | None
    doc: str


class Parameterized:
    """Declared :class:`Param` attributes → validated values (signal and portfolio strategies).

    ``_init_params`` coerces the given values and refuses unknown names (listing the
    known ones); the subclass then runs :meth:`validate_params`.
    """

    name: ClassVar[str] = ""
    _values: dict[str, Any]

    def _init_params(self, params: Mapping[str, Any]) -> None:
        specs = self.param_objects()
        unknown = sorted(set(params) - set(specs))
        if unknown:
            raise ParameterError(
                f"{self.name}: unknown parameter(s) {', '.join(unknown)}; "
                f"known: {', '.join(specs) or '(none)'}")
        self._values = {n: p.coerce(params.get(n, p.default), self.name)
                        for n, p in specs.items()}

    @classmethod
    def param_objects(cls) -> dict[str, Param]:
        """Name → :class:`Param` declared on the class or its bases."""
        # Every instance calls this (10,000 times for a 10,000-combination sweep grid):
        # the scan of the class hierarchy is done once per class (classes declare their
        # Params in their body).
        cached: dict[str, Param] | None = cls.__dict__.get("_param_objects_memo")
        if cached is None:
            cached = {}
            for klass in reversed(cls.__mro__):
                for name, value in vars(klass).items():
                    if isinstance(value, Param):
                        cached[name] = value
            type.__setattr__(cls, "_param_objects_memo", cached)
        return dict(cached)

    @classmethod
    def param_specs(cls) -> list[ParamSpec]:
        """The parameters as published to the CLI, the API and the docs."""
        return [ParamSpec(n, p.kind.__name__, p.default, p.low, p.high, p.doc)
                for n, p in cls.param_objects().items()]

    @property
    def params(self) -> dict[str, Any]:
        """The parameter values (scalars; arrays in a batch)."""
        return dict(self._values)

    def validate_params(self) -> None:
        """Cross-parameter checks (e.g. ``fast < slow``); raise :class:`ParameterError`."""
        return None  # an optional hook: by default parameters are independent


class Strategy(Parameterized, ABC):
    """Base class of every strategy.

    Subclasses declare :class:`Param` attributes, a ``name``, override
    :attr:`warmup` and implement :meth:`signals`. A strategy must be causal: the
    signal at bar *t* may use bars up to and including *t* only
    (``tradelab check NAME`` verifies it).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: True when ``signals`` accepts every parameter as a 1-D array (one value per
    #: combination) and returns 2-D flags; sweeps then run in one call.
    vectorized_params: ClassVar[bool] = False
    #: True when ``signals`` reads its input only as ``bars["open"|"high"|"low"|"close"|"volume"]``
    #: and treats each column as a 1-D float array (as the helpers in
    #: :mod:`tradelab.strategy.indicators` do). The live engine then calls it on
    #: numpy columns of its ring buffer instead of building a DataFrame per bar;
    #: the flags are identical (``tests/unit/engine/test_runner.py`` checks it).
    numpy_columns: ClassVar[bool] = False
    #: Which side ``entries``/``exits`` trade (see :mod:`tradelab.strategy.exits`);
    #: a backtest's, sweep's or engine's ``direction`` overrides it.
    direction: ClassVar[Direction] = "long"
    #: Exits the framework applies (stop-loss, take-profit, trailing, time stop);
    #: ``--sl``/``--tp``/``--trail`` override them field by field.
    stops: ClassVar[Stops] = Stops()
    #: The warmup of each combination; set by :meth:`batch` on batch instances only.
    _warmups: np.ndarray

    def __init__(self, **params: Any) -> None:
        self._init_params(params)
        self._batch: int | None = None
        self.validate_params()

    # -- parameters -----------------------------------------------------------------
    @classmethod
    def batch(cls, combos: Mapping[str, Any]) -> Strategy:
        """An instance whose parameters are arrays, one element per combination.

        Every element is validated like a scalar parameter; missing parameters take
        their default for every combination.
        """
        specs = cls.param_objects()
        unknown = sorted(set(combos) - set(specs))
        if unknown:
            raise ParameterError(f"{cls.name}: unknown parameter(s) {', '.join(unknown)}")
        lengths = {len(np.atleast_1d(v)) for v in combos.values()} or {1}
        if len(lengths) != 1:
            raise ParameterError(f"{cls.name}: parameter arrays differ in length: {lengths}")
        n = lengths.pop()
        obj = cls.__new__(cls)
        values: dict[str, Any] = {}
        for pname, p in specs.items():
            raw = np.atleast_1d(combos.get(pname, [p.default] * n))
            values[pname] = np.array([p.coerce(v, cls.name) for v in raw], dtype=p.kind)
        obj._values = values
        obj._batch = n
        warmups = np.empty(n, dtype=np.int64)
        for i in range(n):  # cross-parameter checks and the warmup, per combination
            single = cls.__new__(cls)
            single._values = {k: v[i].item() for k, v in values.items()}
            single._batch = None
            single.validate_params()
            warmups[i] = int(single.warmup)
        obj._warmups = warmups
        return obj

    def split(self) -> Iterator[Strategy]:
        """The single-combination strategies of a batch (itself when not a batch)."""
        if self._batch is None:
            yield self
            return
        for i in range(self._batch):
            yield type(self)(**{k: v[i].item() for k, v in self._values.items()})

    # -- the strategy contract ------------------------------------------------------
    @property
    def warmup(self) -> int:
        """Bars of history (including the current bar) that the last signal depends on."""
        return 1

    @abstractmethod
    def signals(self, bars: pd.DataFrame) -> Signals | tuple[Any, Any]:
        """Entry and exit flags for every bar; causal. Implemented by each strategy."""

    def indicators(self, bars: pd.DataFrame) -> dict[str, pd.Series]:
        """Optional: the indicator series behind the signals, on the price's scale.

        What the dashboard's price chart draws over the candles (e.g. the two moving
        averages of a crossover), keyed by a label; one parameter set, aligned with
        ``bars``. The default draws nothing.
        """
        return {}

    # -- what the framework calls ---------------------------------------------------
    def combo_warmups(self) -> np.ndarray:
        """The warmup of each combination of a batch (computed once, by :meth:`batch`)."""
        if self._batch is None:
            raise ValueError("not a batch")
        return self._warmups

    def max_warmup(self) -> int:
        if self._batch is None:
            return int(self.warmup)
        return int(self.combo_warmups().max())

    def generate(self, bars: pd.DataFrame) -> Signals:
        """Run :meth:`signals` and normalize: boolean, aligned, NaN→False, warmup masked."""
        raw = self.signals(bars)
        columns = self.combo_index() if self._batch is not None else None
        out = [self._flags(label, raw[k], bars, columns)
               for k, label in enumerate(("entries", "exits"))]
        extra: dict[str, Any] = {}
        if isinstance(raw, Signals):
            for label in ("short_entries", "short_exits"):
                if getattr(raw, label) is not None:
                    extra[label] = self._flags(label, getattr(raw, label), bars, columns)
            for label in ("sl_stop", "tp_stop"):
                if getattr(raw, label) is not None:
                    extra[label] = self._fractions(label, getattr(raw, label), bars, columns)
        return Signals(out[0], out[1], **extra)

    def _fractions(self, label: str, values: Any, bars: pd.DataFrame,
                   columns: pd.Index | None) -> pd.Series | pd.DataFrame:
        """Per-bar stop fractions as floats aligned with the bars (NaN: no stop)."""
        arr = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values,
                         dtype=float)
        if arr.shape[0] != len(bars):
            raise ValueError(f"{self.name}.signals returned {label} of length {arr.shape[0]} "
                             f"for {len(bars)} bars")
        if columns is not None:
            if arr.ndim == 1:
                arr = np.repeat(arr[:, None], len(columns), axis=1)
            return pd.DataFrame(arr, index=bars.index, columns=columns)
        if arr.ndim != 1:
            raise ValueError(f"{self.name}.signals returned 2-D {label} for one parameter set")
        return pd.Series(arr, index=bars.index, name=label)

    def _flags(self, label: str, flags: Any, bars: pd.DataFrame,
               columns: pd.Index | None) -> pd.Series | pd.DataFrame:
        """One set of flags: boolean, aligned, NaN→False, False before the warmup."""
        arr = np.asarray(flags.to_numpy() if hasattr(flags, "to_numpy") else flags)
        if arr.dtype != bool:
            arr = np.nan_to_num(arr.astype(float), nan=0.0) != 0
        if arr.shape[0] != len(bars):
            raise ValueError(
                f"{self.name}.signals returned {label} of length {arr.shape[0]} "
                f"for {len(bars)} bars")
        if columns is not None:
            if arr.ndim == 1:
                arr = np.repeat(arr[:, None], len(columns), axis=1)
            # False on the bars before each combination's own warmup, in one step.
            first = np.maximum(self.combo_warmups() - 1, 0)
            if arr.flags.f_contiguous and not arr.flags.c_contiguous:
                # Column-major flags (a sweep's) stay so, mask included: the frame
                # below then copies whole columns instead of transposing (~10x faster).
                late = (np.arange(len(bars))[None, :] >= first[:, None]).T
                arr = np.logical_and(arr, late, out=np.empty(arr.shape, bool, order="F"))
            else:
                arr = arr & (np.arange(len(bars))[:, None] >= first[None, :])
            return pd.DataFrame(arr, index=bars.index, columns=columns)
        if arr.ndim != 1:
            raise ValueError(f"{self.name}.signals returned 2-D {label} for one parameter set")
        arr = arr.copy()
        arr[: max(int(self.warmup) - 1, 0)] = False
        return pd.Series(arr, index=bars.index, name=label)

    def combo_index(self) -> pd.MultiIndex | pd.Index:
        names = list(self._values)
        if self._batch is None:
            raise ValueError("not a batch")
        arrays = [self._values[n] for n in names]
        if not names:
            return pd.RangeIndex(self._batch)
        return pd.MultiIndex.from_arrays(arrays, names=names)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self) or self._batch is not None:
            return NotImplemented
        return self._values == other._values

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self._values.items()))))
