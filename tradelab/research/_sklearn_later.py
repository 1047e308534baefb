"""vectorbt's scikit-learn transforms, imported on their first use.

``vectorbt.generic.accessors`` (loaded by every backtest: the portfolio's returns
accessor subclasses its ``GenericAccessor``) imports scikit-learn at its top for eight
"transform" methods (``sr.vbt.scale()``, ``minmax_scale()`` …) and ``transform()``;
scikit-learn, and the parts of scipy it imports (sparse, special, optimize,
interpolate, linalg …), are about 0.4 s of a fresh ``tradelab backtest`` that never
calls them. :func:`defer_sklearn` runs that module's body (see
:func:`tradelab._lazy.around_import`) with, in ``sys.modules``, three stand-in modules
for the ``sklearn`` modules it imports from, removed once the body has run:

* the names it takes are placeholders (:class:`_Later`) that import scikit-learn for
  real on first use (a call, any attribute) and then are the real objects again: the
  module's globals and its ``transform_config`` get scikit-learn's own objects
  (``except NotFittedError`` then catches scikit-learn's exception, as ``transform()``
  needs);
* ``attach_transform_methods`` (vectorbt's decorator, which reads each transformer's
  ``__init__`` signature) is replaced for that body: the eight methods are descriptors
  that, on first access, import scikit-learn and let vectorbt's own decorator install
  the real methods (signatures, docstrings) on ``GenericAccessor``.

scikit-learn itself is never replaced: it is not in ``sys.modules`` outside that body,
and any other ``import sklearn`` loads it as usual. If scikit-learn is already imported
when vectorbt's module loads, nothing is deferred.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from tradelab._lazy import around_import

__all__ = ["ACCESSORS", "SKLEARN_NAMES", "defer_sklearn"]

#: The vectorbt module whose scikit-learn imports are deferred.
ACCESSORS = "vectorbt.generic.accessors"
#: What that module imports from scikit-learn (vectorbt 1.2), by module.
SKLEARN_NAMES: dict[str, tuple[str, ...]] = {
    "sklearn.exceptions": ("NotFittedError",),
    "sklearn.preprocessing": ("Binarizer", "MinMaxScaler", "MaxAbsScaler", "Normalizer",
                              "RobustScaler", "StandardScaler", "QuantileTransformer",
                              "PowerTransformer"),
    "sklearn.utils.validation": ("check_is_fitted",),
}


def defer_sklearn() -> None:
    """Let vectorbt's generic accessors import scikit-learn on first use (see the
    module docstring). No-op if they are already imported."""
    around_import(ACCESSORS, _without_sklearn)


def real_object(module: str, name: str) -> Any:
    """``module.name``, imported (how a pickled placeholder comes back)."""
    return getattr(importlib.import_module(module), name)


class _Group:
    """The placeholders handed to one run of vectorbt's module, and their resolution."""

    def __init__(self, original: Callable[..., Any], module: ModuleType) -> None:
        self.original = original  # vectorbt's attach_transform_methods
        self.module = module
        self.stand_ins: dict[str, ModuleType] = {}
        self.owner: type | None = None  # the class the transform methods belong to
        self.config: Any = None
        self.done = False
        # Reentrant: vectorbt's decorator, run while resolving, reads the methods.
        self.lock = threading.RLock()

    def attach_later(self, config: Any) -> Callable[[type], type]:
        """``attach_transform_methods(config)`` with the methods installed on first use."""
        def wrapper(cls: type) -> type:
            with self.lock:
                self.owner, self.config = cls, config
                if self.done:  # (something used a placeholder already)
                    self._install()
                    return cls
                for target in config:
                    setattr(cls, target, _LaterMethod(self, target))
            return cls

        return wrapper

    def drop_stand_ins(self) -> None:
        """Take the stand-in modules out of ``sys.modules`` (once vectorbt's body has
        run, or before scikit-learn is imported for real)."""
        for name, stand_in in self.stand_ins.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]

    def resolve(self) -> None:
        """Import scikit-learn; put its objects where placeholders were, and the real
        transform methods on their class."""
        with self.lock:
            if self.done:
                return
            self.drop_stand_ins()
            namespace = self.module.__dict__
            for key, value in list(namespace.items()):
                if isinstance(value, _Later):
                    namespace[key] = value.real()
            self.done = True
            if self.owner is not None:
                self._install()

    def _install(self) -> None:
        """vectorbt's own decorator, on the real transformers."""
        for settings in self.config.values():
            transformer = settings.get("transformer")
            if isinstance(transformer, _Later):
                # (vectorbt's config is read-only; its entries are plain dicts)
                dict.__setitem__(settings, "transformer", transformer.real())
        self.original(self.config)(self.owner)


class _LaterMethod:
    """A transform method of ``GenericAccessor`` until scikit-learn is imported."""

    def __init__(self, group: _Group, name: str) -> None:
        self.group = group
        self.name = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        self.group.resolve()
        owner = self.group.owner
        assert owner is not None
        return owner.__dict__[self.name].__get__(obj, objtype)


def _placeholder_class() -> type:
    # vectorbt's docs helper prints a SafeToStr with str() instead of probing it
    # (``hasattr(obj, "shape")``), which would import scikit-learn at once.
    from vectorbt.utils.docs import SafeToStr

    return type("_Later", (_Later, SafeToStr), {"__slots__": ()})


class _Later:
    """``module.name`` of scikit-learn, imported at the first call or attribute use."""

    __slots__ = ("_group", "_module", "_name")

    def __init__(self, group: _Group, module: str, name: str) -> None:
        self._group = group
        self._module = module
        self._name = name

    def real(self) -> Any:
        return real_object(self._module, self._name)

    def _resolved(self) -> Any:
        self._group.resolve()
        return self.real()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._resolved()(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        if attr in _Later.__slots__:  # (an instance being built by copy or pickle)
            raise AttributeError(attr)
        return getattr(self._resolved(), attr)

    def __copy__(self) -> Any:
        return self  # (as a class or function is copied)

    def __deepcopy__(self, memo: Any) -> Any:
        return self

    def __reduce__(self) -> Any:
        return real_object, (self._module, self._name)

    def __repr__(self) -> str:
        return f"<{self._module}.{self._name}, imported on first use>"


@contextmanager
def _without_sklearn(module: ModuleType) -> Iterator[None]:
    """Run vectorbt's module with stand-in ``sklearn`` modules (see the module docstring)."""
    if any(name == "sklearn" or name.startswith("sklearn.") for name in sys.modules):
        yield  # scikit-learn is there already: nothing to save
        return
    import vectorbt.generic.decorators as decorators

    group = _Group(decorators.attach_transform_methods, module)
    later = _placeholder_class()
    for name, attrs in SKLEARN_NAMES.items():
        stand_in = ModuleType(name, "tradelab: stand-in while vectorbt imports from it")
        for attr in attrs:
            setattr(stand_in, attr, later(group, name, attr))
        group.stand_ins[name] = stand_in
    sys.modules.update(group.stand_ins)
    decorators.attach_transform_methods = group.attach_later
    try:
        yield
    finally:
        decorators.attach_transform_methods = group.original
        group.drop_stand_ins()
    # The module's own name for the decorator is vectorbt's again.
    if module.__dict__.get("attach_transform_methods") == group.attach_later:
        module.attach_transform_methods = group.original  # type: ignore[attr-defined]
