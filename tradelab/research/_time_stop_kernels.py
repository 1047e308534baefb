"""The time stop in research: two numba callbacks of vectorbt's ``from_signals``.

vectorbt 1.2 has no time stop, but ``Portfolio.from_signals`` accepts callbacks
and then simulates with ``simulate_from_signal_func_nb`` (the callback version of
the kernel the other research runs use, with the same signal pipeline). For each
bar and column it calls, in this order:

1. ``adjust_sl_func_nb`` (only with ``use_stops=True``), whose context carries
   ``init_i``: the bar the open position's entry filled (-1 when flat; set when a
   position opens or reverses, cleared when it closes, whether or not a stop-loss
   is set). :func:`record_entry_bar_nb` copies it into a per-column buffer and
   leaves the stop-loss unchanged.
2. the stop check (a stop that fills in this bar ends the bar: no signal is read,
   rule 4 of :mod:`tradelab.strategy.exits`);
3. ``signal_func_nb``: :func:`time_stop_signal_nb` reads the strategy's flags as
   vectorbt's own ``dir_enex_signal_func_nb``/``ls_enex_signal_func_nb`` do and, when
   the position was held long enough, adds the held side's exit flag, exactly as
   the engine's :meth:`~tradelab.engine.sides.SideDesk.act` sets ``long_exit``/
   ``short_exit`` before the shared conflict rules run.

Bars held (the engine's ``StopState.bars_held``): bars completed after the one the
entry filled in, so at the decision on bar ``d``'s close it is ``d - init_i``; the
time stop asks to exit when that reaches ``time_bars`` (rule 7). With
``fill="close"`` the exit is vectorbt's bar ``d`` itself (``lag=0``); with
``"next_open"`` the signals are shifted one bar, so vectorbt's bar ``i`` carries the
decision of bar ``i - 1`` (``lag=1``).

Both callbacks are compiled with ``cache=True``; the simulation that calls them is
a disk-cached copy of vectorbt's kernel (:func:`time_stop_kernel`), so a fresh
process does not compile it again.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import textwrap
import threading
from typing import Any

import numpy as np
import vectorbt.portfolio.nb as _vbt_nb
from numba import njit
from vectorbt.base.reshape_fns import flex_select_auto_nb
from vectorbt.utils.template import Rep, RepFunc

__all__ = ["MODES", "record_entry_bar_nb", "time_stop_kernel", "time_stop_signal_nb",
           "with_time_stop"]

#: How the entries/exits map to the four direction-aware flags (vectorbt's
#: ``dir_enex_signal_func_nb`` for longonly/shortonly/both, ``ls_enex_signal_func_nb``
#: for explicit short flags).
MODES = {"longonly": 0, "shortonly": 1, "both": 2, "ls": 3}

_install_lock = threading.Lock()
#: vectorbt's own kernel (looked up before :func:`time_stop_kernel` routes the name).
_vbt_simulate = _vbt_nb.simulate_from_signal_func_nb


@njit(cache=True, nogil=True)
def record_entry_bar_nb(c: Any, opened: Any) -> Any:  # pragma: no cover (compiled)
    """``adjust_sl_func_nb``: note the bar the position's entry filled; the stop-loss
    and its trailing flag stay as they are."""
    opened[c.col] = c.init_i
    return c.curr_stop, c.curr_trail


@njit(cache=True, nogil=True)
def time_stop_signal_nb(c: Any, entries: Any, exits: Any, short_entries: Any, short_exits: Any,
                        mode: int, time_bars: Any, lag: int,
                        opened: Any) -> Any:  # pragma: no cover (compiled)
    """``signal_func_nb``: the bar's flags, plus the held side's exit when the time
    stop is due (``time_bars``: per column, or one value; 0 means none)."""
    entry = bool(flex_select_auto_nb(entries, c.i, c.col, c.flex_2d))
    exit_ = bool(flex_select_auto_nb(exits, c.i, c.col, c.flex_2d))
    long_entry = long_exit = short_entry = short_exit = False
    if mode == 0:
        long_entry, long_exit = entry, exit_
    elif mode == 1:
        short_entry, short_exit = entry, exit_
    elif mode == 2:
        long_entry, short_entry = entry, exit_
    else:
        long_entry, long_exit = entry, exit_
        short_entry = bool(flex_select_auto_nb(short_entries, c.i, c.col, c.flex_2d))
        short_exit = bool(flex_select_auto_nb(short_exits, c.i, c.col, c.flex_2d))
    n = time_bars[c.col] if time_bars.shape[0] > 1 else time_bars[0]
    start = opened[c.col]
    if n > 0 and start >= 0 and c.position_now != 0 and c.i - start >= n + lag:
        if c.position_now > 0:
            long_exit = True
        else:
            short_exit = True
    return long_entry, long_exit, short_entry, short_exit


#: The callback parameters of vectorbt's kernel, bound to globals in :func:`_bound_kernel`.
_CALLBACKS = {"signal_func_nb": time_stop_signal_nb, "adjust_sl_func_nb": record_entry_bar_nb,
              "adjust_tp_func_nb": _vbt_nb.no_adjust_tp_func_nb}
_CALLBACK_PARAM = re.compile(r"^\s*(signal_func_nb|adjust_sl_func_nb|adjust_tp_func_nb)\s*:")


def _bound_kernel() -> Any:
    """vectorbt's ``simulate_from_signal_func_nb`` with this module's callbacks bound.

    numba cannot cache a function that receives functions as arguments (it lowers
    each as the address of a Python object, a "dynamic global"), so every process
    compiled the callback simulation again (tens of seconds). Here vectorbt's own
    source is compiled once more with its three callback parameters removed: the
    names then resolve to this module's callbacks as globals, which numba calls
    directly and can cache. Nothing else of the source changes; the function's
    name carries a digest of it (a different vectorbt gets its own cache entry), and
    it is compiled under this file's name so that numba's disk cache can locate it.
    """
    source = textwrap.dedent(inspect.getsource(_vbt_simulate.py_func))
    lines = source.splitlines()
    kept = [line for line in lines if not _CALLBACK_PARAM.match(line)]
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    name = f"simulate_time_stop_{digest}"
    head = "def simulate_from_signal_func_nb("
    start = next((k for k, line in enumerate(kept) if line.startswith(head)), None)
    if len(lines) - len(kept) != len(_CALLBACKS) or start is None:
        raise RuntimeError("vectorbt's simulate_from_signal_func_nb changed: the time stop "
                           "cannot bind its callbacks (vectorbt 1.2 is required)")
    kept = kept[start:]
    kept[0] = kept[0].replace("simulate_from_signal_func_nb", name, 1)
    namespace = {**vars(_vbt_nb), **_CALLBACKS, "__name__": __name__}
    exec(compile("\n".join(kept) + "\n", __file__, "exec"), namespace)
    options = {k: v for k, v in _vbt_simulate.targetoptions.items() if k != "nopython"}
    options.update(cache=True, nogil=True)
    return njit(**options)(namespace[name])


_kernel: Any = None


def _routed(*args: Any, **kwargs: Any) -> Any:
    """Stands in for ``vectorbt.portfolio.nb.simulate_from_signal_func_nb``: a run with
    this module's callbacks goes to the bound kernel, any other to vectorbt's."""
    if all(kwargs.get(k) is f for k, f in _CALLBACKS.items() if k != "adjust_tp_func_nb") \
            and kwargs.get("adjust_tp_func_nb", _CALLBACKS["adjust_tp_func_nb"]) \
            is _CALLBACKS["adjust_tp_func_nb"]:
        for k in _CALLBACKS:
            kwargs.pop(k, None)
        return _kernel(*args, **kwargs)
    return _vbt_simulate(*args, **kwargs)


def time_stop_kernel() -> None:
    """Build the bound kernel and route vectorbt's callback simulation through
    :func:`_routed` (once; ``vbt.Portfolio.from_signals`` looks the name up at each call)."""
    global _kernel
    if _vbt_nb.simulate_from_signal_func_nb is _routed:
        return
    with _install_lock:
        if _kernel is None:
            _kernel = _bound_kernel()
        _vbt_nb.simulate_from_signal_func_nb = _routed


def with_time_stop(kwargs: dict[str, Any], time_bars: np.ndarray, lag: int) -> dict[str, Any]:
    """Change ``from_signals`` keyword arguments (with ``use_stops=True``) so that the
    callbacks of this module read the signals and add the time stop.

    ``time_bars``: per column (or one value), 0 for none; ``lag``: 1 when the signals
    were shifted for ``fill="next_open"``, else 0. The signal arrays move to
    ``broadcast_named_args`` (broadcast exactly as vectorbt broadcasts them itself)
    and ``direction`` is replaced by the mode it implies.
    """
    time_stop_kernel()
    mode = MODES["ls"] if "short_entries" in kwargs else MODES[kwargs["direction"]]
    kwargs.pop("direction", None)
    flags = {k: kwargs.pop(k, False) for k in ("entries", "exits", "short_entries", "short_exits")}
    buffer = _EntryBars()
    kwargs.update(
        signal_func_nb=time_stop_signal_nb,
        signal_args=(*(Rep(k) for k in flags), mode, np.asarray(time_bars, dtype=np.int64),
                     int(lag), RepFunc(buffer)),
        broadcast_named_args=flags,
        adjust_sl_func_nb=record_entry_bar_nb,
        adjust_sl_args=(RepFunc(buffer),))
    return kwargs


class _EntryBars:
    """The per-column entry-bar buffer of one simulation, shared by both callbacks (a
    template: vectorbt calls it with the broadcast shape, once per argument tuple)."""

    def __init__(self) -> None:
        self.array: np.ndarray | None = None

    def __call__(self, target_shape: tuple[int, int]) -> np.ndarray:
        if self.array is None:
            self.array = np.full(target_shape[1], -1, dtype=np.int64)
        return self.array
