"""Lazy package exports: public names resolved on first use.

Packages expose their public API from ``__init__`` without importing the modules
behind it, so ``import tradelab`` (and ``tradelab.config``, which imports the
settings modules of ``jobs``, ``notify`` and ``monitor``) stays light and free of
import cycles. Only ``importlib``, ``sys``, ``threading`` and ``contextlib`` are
imported here (and :mod:`tradelab._stand_ins`, the proxy module behind
``defer_import(stand_ins=)``).

:func:`defer_import` does the same for a third-party module that a dependency
imports eagerly but rarely uses, and :func:`defer_package_init` runs a package's
``__init__`` (which may import every submodule "in case") only when something other
than its submodules is used. :func:`after_import` and :func:`around_import` run code
after, or around, a module's body.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, ExitStack
from types import ModuleType
from typing import Any

from tradelab._stand_ins import proxy_spec


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
#: Names whose next import gives a proxy with these stand-in attributes.
_STAND_INS: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {}


class _DeferringFinder:
    """Meta-path finder: the spec the other finders give for a deferred name, made lazy.

    The lazy module must come from the import system itself: a lazy module put into
    ``sys.modules`` by hand is loaded by the very next ``import`` of it (the import
    system reads its ``__spec__``, and any attribute access runs the body). The same
    finder hands out the specs of :func:`defer_package_init` and :func:`after_import`.
    """

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> Any:
        if name in _DEFERRED:
            _DEFERRED.discard(name)
            spec = _real_spec(name, path, target)
            if spec is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = importlib.util.LazyLoader(spec.loader)
            return spec
        stand_ins = _STAND_INS.pop(name, None)
        if stand_ins is not None:
            spec = _real_spec(name, path, target)
            return None if spec is None else proxy_spec(spec, *stand_ins)
        pending = _PACKAGES.get(name)
        if pending is not None and pending.module is None:
            spec = _real_spec(name, path, target)
            if spec is not None and spec.submodule_search_locations is not None \
                    and hasattr(spec.loader, "exec_module"):
                spec.loader = _InitLaterLoader(spec.loader, pending)
            return spec
        callbacks = _AFTER.pop(name, None)
        contexts = _AROUND.pop(name, None)
        if callbacks is not None or contexts is not None:
            spec = _real_spec(name, path, target)
            if spec is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _ThenLoader(spec.loader, callbacks or [], contexts or [])
            return spec
        return None


def _real_spec(name: str, path: Any, target: Any) -> Any:
    """The spec the finders after :class:`_DeferringFinder` give for ``name``."""
    for finder in sys.meta_path:
        if finder is _DeferringFinder:
            continue
        find = getattr(finder, "find_spec", None)
        spec = find(name, path, target) if find is not None else None
        if spec is not None:
            return spec
    return None


def _install_finder() -> None:
    if _DeferringFinder not in sys.meta_path:
        sys.meta_path.insert(0, _DeferringFinder)


def defer_import(name: str, stand_ins: Iterable[str] = (),
                 importers: Iterable[str] = ()) -> None:
    """Make the next ``import name`` return a module whose body runs on first use.

    For modules that a dependency imports at start-up "in case": plotly (imported by
    vectorbt) fetches ``nbformat`` only to render figures in a notebook, and
    ``nbformat`` pulls in ``jsonschema``, whose ``iri`` format checker compiles a lark
    grammar (``rfc3987_syntax``) at import: about 1.5 s of every ``tradelab
    backtest`` on an idle machine, for code the command never runs. The deferred
    module behaves as usual once used (a notebook, papermill), and so does a later
    ``import name`` (which loads it). No-op if ``name`` is already imported.

    Parameters
    ----------
    name
        The module.
    stand_ins
        Names importers take from the module at import time (``from name import f``),
        which would load it at once: the deferred module hands out a stand-in for each
        instead, a callable that forwards calls and attribute lookups to the real
        ``name.f``, loading the module at that first use. Only for functions and
        objects used through calls and attributes (a stand-in is no class, and
        ``isinstance`` or identity tests see the stand-in). Any other attribute, and
        ``__path__`` (importing a submodule), loads the real module, which then
        replaces the deferred one in ``sys.modules`` and on its parent package.
    importers
        Module name prefixes (``"vectorbt."``): only code of these modules gets
        stand-ins; anyone else asking for one of the names gets the real object
        (loading the module). Default: everyone.
    """
    if name in sys.modules:
        return
    names = frozenset(stand_ins)
    if names:
        _STAND_INS[name] = (names, tuple(importers))
    else:
        _DEFERRED.add(name)
    _install_finder()


class _PackageInit:
    """A package imported without its ``__init__`` body, which runs on first use.

    The module object is the one the import system created (``__path__``, ``__spec__``
    set), so submodules import as usual, each bound on the package as it loads. Its
    ``__getattr__`` (:meth:`getattr`) answers names the body would have bound.
    """

    def __init__(self, name: str, exports: Mapping[str, str],
                 on_init: Callable[[], None] | None) -> None:
        self.name = name
        self.exports = dict(exports)
        self.on_init = on_init
        self.module: ModuleType | None = None
        self.loader: Any = None
        self.done = False
        self.running = False
        # Reentrant: the body's own imports look names up on the package
        # (``hasattr(package, "__blacklist__")``) in the thread that runs it.
        self.lock = threading.RLock()

    def getattr(self, attr: str) -> Any:
        module = self.module
        assert module is not None
        target = self.exports.get(attr)
        if target is not None and not self.done:
            value = getattr(importlib.import_module(target), attr)
            module.__dict__[attr] = value  # the body binds the very same object
            return value
        sub = None if attr.startswith("__") else importlib.machinery.PathFinder.find_spec(
            f"{self.name}.{attr}", module.__path__)
        if sub is not None and sub.loader is not None:  # (a bare directory is no submodule)
            # A submodule (``from pkg import sub`` asks with hasattr first): load it, as
            # the body would have, without running the body.
            return importlib.import_module(f"{self.name}.{attr}")
        self.run()
        try:
            return module.__dict__[attr]
        except KeyError:
            raise AttributeError(f"module {self.name!r} has no attribute {attr!r}") from None

    def dir(self) -> list[str]:
        self.run()
        assert self.module is not None
        return sorted(self.module.__dict__)

    def run(self) -> None:
        """Run the package body once, in the package's own namespace."""
        with self.lock:
            if self.done or self.running:
                return
            module = self.module
            assert module is not None
            self.running = True
            try:
                self.loader.exec_module(module)
            finally:
                self.running = False
            self.done = True
            namespace = module.__dict__
            for hook, fn in (("__getattr__", self.getattr), ("__dir__", self.dir)):
                if namespace.get(hook) == fn:
                    del namespace[hook]
            # A later importlib.reload runs the real loader.
            module.__loader__ = self.loader
            if module.__spec__ is not None:
                module.__spec__.loader = self.loader
        if self.on_init is not None:
            self.on_init()


class _InitLaterLoader(importlib.abc.Loader):
    """Creates the package module as the real loader would; its body waits (see
    :class:`_PackageInit`)."""

    def __init__(self, loader: Any, pending: _PackageInit) -> None:
        self.loader = loader
        self.pending = pending

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.pending.module = module
        self.pending.loader = self.loader
        module.__dict__["__getattr__"] = self.pending.getattr
        module.__dict__["__dir__"] = self.pending.dir


class _ThenLoader(importlib.abc.Loader):
    """The real loader inside the :func:`around_import` contexts, then the
    :func:`after_import` callbacks."""

    def __init__(self, loader: Any, callbacks: list[Callable[[ModuleType], None]],
                 contexts: list[Callable[[ModuleType], AbstractContextManager[Any]]]) -> None:
        self.loader = loader
        self.callbacks = callbacks
        self.contexts = contexts

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with ExitStack() as stack:
            for context in self.contexts:
                stack.enter_context(context(module))
            self.loader.exec_module(module)
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        for callback in self.callbacks:
            callback(module)


#: Packages whose body waits (see defer_package_init), by name.
_PACKAGES: dict[str, _PackageInit] = {}
#: Callbacks to run once a module is imported (see after_import), by module name.
_AFTER: dict[str, list[Callable[[ModuleType], None]]] = {}
#: Contexts to run a module's body in (see around_import), by module name.
_AROUND: dict[str, list[Callable[[ModuleType], AbstractContextManager[Any]]]] = {}


def defer_package_init(name: str, exports: Mapping[str, str] | None = None,
                       on_init: Callable[[], None] | None = None) -> None:
    """Make the next ``import name`` (a package) skip its ``__init__`` body until used.

    For a package whose ``__init__`` imports every submodule "in case" (vectorbt's
    imports all of them: data sources, indicators, messaging …) when a command needs a
    few. The package module is created as usual, so ``import name.sub`` and ``from name
    import sub`` load just that submodule. The body runs, in the package's namespace,
    at the first use of any other name: ``name.X``, ``dir(name)``, ``from name import
    *``, or :func:`run_package_init`. No-op if ``name`` is already imported.

    Parameters
    ----------
    name
        The package.
    exports
        Names the body binds from a submodule (``{"X": "name.sub"}``): ``name.X``
        imports that submodule only, without running the body.
    on_init
        Called once the body has run.
    """
    if name in sys.modules or name in _PACKAGES:
        return
    _PACKAGES[name] = _PackageInit(name, exports or {}, on_init)
    _install_finder()


def package_init_pending(name: str) -> bool:
    """Whether ``name`` is imported (see :func:`defer_package_init`) and its body has not run."""
    pending = _PACKAGES.get(name)
    return pending is not None and pending.module is not None and not pending.done


def run_package_init(name: str) -> None:
    """Run the waiting body of package ``name`` now (no-op if it has run or is not
    imported)."""
    pending = _PACKAGES.get(name)
    if pending is not None and pending.module is not None:
        pending.run()


def after_import(name: str, callback: Callable[[ModuleType], None]) -> None:
    """Call ``callback(module)`` once module ``name`` is imported (at once if it is)."""
    module = sys.modules.get(name)
    if module is not None:
        callback(module)
        return
    _AFTER.setdefault(name, []).append(callback)
    _install_finder()


def around_import(name: str, context: Callable[[ModuleType], AbstractContextManager[Any]]
                  ) -> bool:
    """Run the body of module ``name``, when it is next imported, inside ``context(module)``.

    The context is entered just before the body runs (the module object exists, empty)
    and exited after it, also when the body raises. Returns ``False``, doing nothing,
    if ``name`` is already imported (its body has run).
    """
    if name in sys.modules:
        return False
    _AROUND.setdefault(name, []).append(context)
    _install_finder()
    return True
