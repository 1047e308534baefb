"""Lazy package exports: public names resolved on first use.

Packages expose their public API from ``__init__`` without importing the modules
behind it, so ``import tradelab`` (and ``tradelab.config``, which imports the
settings modules of ``jobs``, ``notify`` and ``monitor``) stays light and free of
import cycles. Only ``importlib`` is imported here.
"""

from __future__ import annotations

import importlib
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
