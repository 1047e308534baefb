"""Lazy package exports: public names resolved on first use.

Packages expose their public API from ``__init__`` without importing the modules
behind it, so ``import tradelab`` (and ``tradelab.config``, which imports the
settings modules of ``jobs``, ``notify`` and ``monitor``) stays light and free of
import cycles. Only ``importlib`` and ``sys`` are imported here.

:func:`defer_import` does the same for a third-party module that a dependency
imports eagerly but rarely uses.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str], namespace: dict[str, Any]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` for ``package``.

    Parameters
    ----------
    package
        The package's ``__name__``.
    exports
        Public name → module holding it: absolute (``tradelab.x.y``) or relative to
        ``package`` (``"service"``).
    namespace
        The package's ``globals()``; a resolved name is cached there, so later
        lookups do not come back through ``__getattr__``.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        path = module if module.startswith("tradelab") else f"{package}.{module}"
        value = getattr(importlib.import_module(path), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace.get("__all__", ()), *exports})

    return __getattr__, __dir__


#: Names whose next import is to be lazy (each is removed once that import happens).
_DEFERRED: set[str] = set()


class _DeferringFinder:
    """Meta-path finder: the spec the other finders give for a deferred name, made lazy.

    The lazy module must come from the import system itself: a lazy module put into
    ``sys.modules`` by hand is loaded by the very next ``import`` of it (the import
    system reads its ``__spec__``, and any attribute access runs the body).
    """

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> Any:
        if name not in _DEFERRED:
            return None
        _DEFERRED.discard(name)
        for finder in sys.meta_path:
            if finder is _DeferringFinder:
                continue
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = importlib.util.LazyLoader(spec.loader)
                return spec
        return None


def defer_import(name: str) -> None:
    """Make the next ``import name`` return a module whose body runs on first attribute use.

    For modules that a dependency imports at start-up "in case": plotly (imported by
    vectorbt) fetches ``nbformat`` only to render figures in a notebook, and
    ``nbformat`` pulls in ``jsonschema``, whose ``iri`` format checker compiles a lark
    grammar (``rfc3987_syntax``) at import: about 1.5 s of every ``tradelab
    backtest`` on an idle machine, for code the command never runs. The deferred
    module behaves as usual once used (a notebook, papermill), and so does a later
    ``import name`` (which loads it). No-op if ``name`` is already imported.
    """
    if name in sys.modules:
        return
    _DEFERRED.add(name)
    if _DeferringFinder not in sys.meta_path:
        sys.meta_path.insert(0, _DeferringFinder)
