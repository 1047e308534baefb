"""Plug-in discovery: ``strategies/*.py`` files and the ``tradelab.strategies`` entry points.

Files are imported with :mod:`importlib` under a private package name
(no ``sys.path`` edits, no ``exec``). A name registered twice is an error that
names both origins; an unknown name lists what is available.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from tradelab.errors import DuplicateStrategyError, TradelabError, UnknownStrategyError
from tradelab.strategy.base import Strategy

if TYPE_CHECKING:  # pragma: no cover
    from tradelab.config import Settings

ENTRY_POINT_GROUP = "tradelab.strategies"
_PLUGIN_PACKAGE = "tradelab_plugins"


def _load_file(path: Path) -> ModuleType:
    module_name = f"{_PLUGIN_PACKAGE}.{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise TradelabError(f"strategy file {path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    # Registered so that pickling (multiprocessing, Dask) can find the classes again.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise TradelabError(f"strategy file {path}: {type(exc).__name__}: {exc}") from exc
    return module


def _strategies_in(module: ModuleType) -> list[type[Strategy]]:
    return [obj for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, Strategy) and not inspect.isabstract(obj)
            and obj.__module__ == module.__name__ and obj.name]


class StrategyRegistry:
    """Strategy classes by name."""

    def __init__(self) -> None:
        self._classes: dict[str, type[Strategy]] = {}
        self._origins: dict[str, str] = {}

    def register(self, cls: type[Strategy], origin: str = "") -> type[Strategy]:
        """Add a strategy class; a second class under the same name is an error."""
        if not (isinstance(cls, type) and issubclass(cls, Strategy)) or not cls.name:
            raise TradelabError(f"{origin or cls!r}: not a Strategy subclass with a name")
        origin = origin or f"{cls.__module__}.{cls.__qualname__}"
        if cls.name in self._classes and self._classes[cls.name] is not cls:
            raise DuplicateStrategyError(
                f"strategy name {cls.name!r} is defined twice: "
                f"{self._origins[cls.name]} and {origin}")
        self._classes[cls.name] = cls
        self._origins[cls.name] = origin
        return cls

    @classmethod
    def discover(cls, paths: Iterable[Path] = (), entry_points: bool = True) -> StrategyRegistry:
        """Build a registry from strategy folders (or files) and installed entry points."""
        registry = cls()
        for folder in paths:
            folder = Path(folder)
            files = [folder] if folder.is_file() else sorted(folder.glob("*.py"))
            for file in files:
                if file.name.startswith("_"):
                    continue
                for klass in _strategies_in(_load_file(file)):
                    registry.register(klass, str(file))
        if entry_points:
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                try:
                    klass = ep.load()
                except Exception as exc:
                    raise TradelabError(
                        f"entry point {ep.name} = {ep.value}: {type(exc).__name__}: {exc}"
                    ) from exc
                registry.register(klass, f"entry point {ep.name} ({ep.value})")
        return registry

    @classmethod
    def from_settings(cls, settings: Settings) -> StrategyRegistry:
        """The registry ``[strategies]`` configures: its ``paths`` that exist, and the
        installed entry points unless ``entry_points = false``.

        Here rather than only in the composition root so that the packages below it
        (jobs, research) can resolve a strategy name without importing :mod:`tradelab.app`.
        """
        paths = [settings.path(p) for p in settings.strategies.paths]
        return cls.discover([p for p in paths if p.exists()],
                            entry_points=settings.strategies.entry_points)

    def names(self) -> list[str]:
        return sorted(self._classes)

    def origin(self, name: str) -> str:
        self.get(name)
        return self._origins[name]

    def get(self, name: str) -> type[Strategy]:
        try:
            return self._classes[name]
        except KeyError:
            raise UnknownStrategyError(name, self.names()) from None

    def create(self, name: str, **params: Any) -> Strategy:
        """An instance of strategy ``name`` with validated parameters."""
        return self.get(name)(**params)

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._classes)
