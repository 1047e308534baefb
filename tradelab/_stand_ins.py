"""Stand-ins: the module proxy behind :func:`tradelab._lazy.defer_import`'s ``stand_ins``.

A module that others import names from at import time (``from scipy.stats import
skew``) cannot be made lazy by :class:`importlib.util.LazyLoader`: taking the name
loads it. The proxy module here answers such names with stand-ins that load the real
module on first use, and loads it at once for anything else. Only ``importlib``,
``sys`` and ``threading`` are imported here.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
from types import ModuleType
from typing import Any

__all__ = ["proxy_spec"]


def proxy_spec(real: Any, stand_ins: frozenset[str], importers: tuple[str, ...]) -> Any:
    """The spec of a proxy module standing in for the module whose spec is ``real``
    (see :func:`tradelab._lazy.defer_import`)."""
    spec = importlib.machinery.ModuleSpec(
        real.name, _ProxyLoader(_ModuleProxy(real.name, stand_ins, importers), real.origin),
        origin=real.origin)
    # A package's path: ``from name import f`` checks it, and submodules import from it
    # without loading ``name``.
    spec.submodule_search_locations = real.submodule_search_locations
    return spec


class _StandIn:
    """``module.attr`` (a function or an object used through its attributes), loading
    ``module`` at the first call or attribute use."""

    def __init__(self, proxy: _ModuleProxy, attr: str) -> None:
        self._proxy = proxy
        self._attr = attr

    def _target(self) -> Any:
        return getattr(self._proxy.real(), self._attr)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._target()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name in ("_proxy", "_attr"):  # (an instance being built by copy or pickle)
            raise AttributeError(name)
        if name in _TYPING_PROBES:
            # typing asks for these when a stand-in is named in an annotation
            # (``Optional[stand_in]``, evaluated at import): a function or a plain class
            # has none of them, so the answer is the real object's without loading it.
            raise AttributeError(name)
        return getattr(self._target(), name)

    def __repr__(self) -> str:
        return f"<stand-in for {self._proxy.name}.{self._attr}>"


class _ModuleProxy:
    """The module ``import name`` returns until the real one is needed (see
    :func:`defer_import`'s ``stand_ins``)."""

    def __init__(self, name: str, stand_ins: frozenset[str], importers: tuple[str, ...]) -> None:
        self.name = name
        self.stand_ins = stand_ins
        self.importers = importers
        self.made: dict[str, _StandIn] = {}
        self.module: ModuleType | None = None
        self.loaded: ModuleType | None = None
        self.ready = False  # set once the import system has initialised the module
        self.lock = threading.RLock()

    def real(self) -> ModuleType:
        """Import the real module (once); it replaces the proxy in ``sys.modules`` and
        on the parent package."""
        with self.lock:
            if self.loaded is None:
                if sys.modules.get(self.name) is self.module:
                    del sys.modules[self.name]
                parent, _, child = self.name.rpartition(".")
                package = sys.modules.get(parent)
                if package is not None and getattr(package, child, None) is self.module:
                    # The real module's own ``import parent.child.x`` must find it, not us.
                    delattr(package, child)
                self.loaded = importlib.import_module(self.name)
            return self.loaded

    def getattr(self, attr: str) -> Any:
        if attr in self.stand_ins and self.loaded is None and self._for_importer():
            return self.made.setdefault(attr, _StandIn(self, attr))
        # The import system probes dunders while it sets the module up; of those, only
        # __all__ (``import *``) needs the real module.
        if attr.startswith("__") and (not self.ready or attr != "__all__"):
            raise AttributeError(f"module {self.name!r} has no attribute {attr!r}")
        return getattr(self.real(), attr)

    def dir(self) -> list[str]:
        return dir(self.real())

    def _for_importer(self) -> bool:
        """Whether the code asking (past the import system's frames) is an importer."""
        if not self.importers:
            return True
        frame = sys._getframe(2)
        while frame is not None and frame.f_globals.get("__name__") in _IMPORT_SYSTEM:
            frame = frame.f_back  # type: ignore[assignment]
        asker = "" if frame is None else str(frame.f_globals.get("__name__", ""))
        return asker.startswith(self.importers)


#: What typing (and typing_extensions) look up on each argument of a subscripted type.
_TYPING_PROBES = frozenset({"__typing_subst__", "__parameters__",
                            "__typing_is_unpacked_typevartuple__",
                            "__typing_unpacked_tuple_args__"})

#: Modules whose frames stand between an ``import`` statement and a module's attributes.
_IMPORT_SYSTEM = frozenset({"importlib._bootstrap", "_frozen_importlib", "importlib"})


class _ProxyLoader(importlib.abc.Loader):
    def __init__(self, proxy: _ModuleProxy, origin: str | None) -> None:
        self.proxy = proxy
        self.origin = origin

    def create_module(self, spec: Any) -> ModuleType:
        module = ModuleType(spec.name)
        module.__dict__.update(__getattr__=self.proxy.getattr, __dir__=self.proxy.dir)
        if self.origin is not None:
            module.__file__ = self.origin  # (inspect.getmodule reads every module's)
        self.proxy.module = module
        return module

    def exec_module(self, module: ModuleType) -> None:
        self.proxy.ready = True
