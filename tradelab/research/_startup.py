"""What a research command loads of vectorbt: the simulation, not the whole library.

vectorbt's ``__init__`` imports every one of its submodules (data sources with
ccxt, indicators, labels, messaging …), about a second of every fresh ``tradelab
backtest``, which needs the portfolio simulation and its records only.
:func:`defer_vectorbt` (called by :mod:`tradelab.research` before any research
module imports vectorbt) makes ``import vectorbt`` create the package without running
that body (see :func:`tradelab._lazy.defer_package_init`):

* ``vbt.Portfolio`` imports :mod:`vectorbt.portfolio.base` (and what it imports)
  only; ``import vectorbt.x.y`` and ``from vectorbt import x`` load just that
  submodule, as they would anyway;
* anything else the body would bind (``vbt.settings``, ``vbt.IndicatorFactory``,
  ``vbt.MA``, ``dir(vbt)``, ``from vectorbt import *``) runs the body first, so it is
  there exactly as after a plain ``import vectorbt``;
* the pandas sub-accessors registered by modules the body imports and the
  simulation does not (``sr.vbt.signals``, ``df.vbt.ohlcv``, ``df.vbt.px`` …) also
  run it on first use: the ``vbt`` accessor classes get a ``__getattr__`` (consulted
  only for names they lack) until the body has run.

The objects are vectorbt's own, imported by vectorbt's own modules: results do not
change, only when the unused parts load.
"""

from __future__ import annotations

from typing import Any

from tradelab._lazy import (
    after_import,
    defer_package_init,
    package_init_pending,
    run_package_init,
)

__all__ = ["SUB_ACCESSORS", "VECTORBT_EXPORTS", "defer_vectorbt"]

#: ``vbt.<name>`` served from one submodule without running vectorbt's ``__init__``
#: (the body binds the same object: ``from vectorbt.portfolio import *``).
VECTORBT_EXPORTS: dict[str, str] = {"Portfolio": "vectorbt.portfolio.base"}

#: Accessors vectorbt 1.2 registers on its ``sr.vbt`` / ``df.vbt`` (``signals``,
#: ``returns``: ``signals/`` and ``returns/accessors.py``; ``ohlc``/``ohlcv``:
#: ``ohlcv_accessors.py``; ``px``: ``px_accessors.py``).
SUB_ACCESSORS = frozenset({"signals", "returns", "ohlc", "ohlcv", "px"})


def defer_vectorbt() -> None:
    """Let ``import vectorbt`` load only what is used (see the module docstring).

    No-op if vectorbt is already imported.
    """
    defer_package_init("vectorbt", VECTORBT_EXPORTS, on_init=_unhook_accessors)
    after_import("vectorbt.root_accessors", _hook_accessors)


def _accessor_classes(module: Any) -> tuple[type, ...]:
    return (module.Vbt_SRAccessor, module.Vbt_DFAccessor)


def _hook_accessors(module: Any) -> None:
    if package_init_pending("vectorbt"):
        for cls in _accessor_classes(module):
            cls.__getattr__ = _sub_accessor  # type: ignore[attr-defined]


def _unhook_accessors() -> None:
    import sys

    module = sys.modules.get("vectorbt.root_accessors")
    if module is None:
        return
    for cls in _accessor_classes(module):
        if cls.__dict__.get("__getattr__") is _sub_accessor:
            del cls.__getattr__  # type: ignore[attr-defined]


def _sub_accessor(self: Any, name: str) -> Any:
    """``__getattr__`` of the ``vbt`` accessors until vectorbt's body has run."""
    if name in SUB_ACCESSORS and package_init_pending("vectorbt"):
        run_package_init("vectorbt")
        if not package_init_pending("vectorbt"):  # (not while the body runs)
            return object.__getattribute__(self, name)
    raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
