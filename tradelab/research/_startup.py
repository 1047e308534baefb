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

Figures load on first use too: ``vectorbt.utils``' own ``__init__`` (which imports
``vectorbt.utils.figure``) waits like vectorbt's, the simulation's modules take
``make_figure``, ``make_subplots`` and ``get_domain`` from ``vectorbt.utils.figure`` as
stand-ins, and ``vectorbt._typing`` (annotations only) takes plotly's ``Figure`` and
``FigureWidget`` as stand-ins: plotly's ``FigureWidget`` (ipywidgets, anywidget,
IPython) is imported by the first figure, which is then vectorbt's own class.
Likewise ``vectorbt.signals`` (whose generators build indicator classes at import):
``vectorbt.portfolio.base`` takes ``RANDNX``/``RPROBNX`` as stand-ins, for
``Portfolio.from_random_signals``. ``vectorbt._typing`` also takes plotly's
``BaseFigure``/``BaseTraceType`` as stand-ins (annotations, as does
``vectorbt.generic.plotting``; their module imports
plotly's validators and narwhals), and ``dateparser`` (imported by
``vectorbt.utils.datetime_`` to parse date strings) is a lazy module, loaded on first
use.

vectorbt's ``_settings`` also builds a plotly ``Template`` for each of its themes at
import (validating thousands of properties, ~0.2 s) and registers them with
``plotly.io.templates``, for figures a backtest never draws. :func:`defer_vectorbt`
makes that registration lazy (see :func:`_register_template_later`): the theme's
template is recorded, and built and registered the first time plotly's template
registry is read (a figure with a ``vbt_*`` template, ``pio.templates[name]``,
``.items()``), with the same result.
"""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

from tradelab._lazy import (
    after_import,
    defer_import,
    defer_package_init,
    package_init_pending,
    run_package_init,
)

__all__ = ["FIGURE_FUNCTIONS", "SUB_ACCESSORS", "VECTORBT_EXPORTS", "defer_vectorbt"]

#: ``vbt.<name>`` served from one submodule without running vectorbt's ``__init__``
#: (the body binds the same object: ``from vectorbt.portfolio import *``).
VECTORBT_EXPORTS: dict[str, str] = {"Portfolio": "vectorbt.portfolio.base"}

#: What vectorbt's modules take from ``vectorbt.utils.figure`` (besides its package body).
FIGURE_FUNCTIONS = ("make_figure", "make_subplots", "get_domain")

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
    # Figures: vectorbt.utils' __init__ (run by any import of a vectorbt.utils.x) and
    # vectorbt._typing import plotly's FigureWidget, and vectorbt.utils.figure subclasses
    # it: ipywidgets, anywidget and IPython, ~0.2 s. The simulation's modules take only
    # functions from vectorbt.utils.figure (stand-ins until a figure is made), and
    # _typing's two names are for annotations.
    defer_package_init("vectorbt.utils")
    defer_import("vectorbt.utils.figure", stand_ins=FIGURE_FUNCTIONS, importers=("vectorbt.",))
    defer_import("plotly.graph_objects", stand_ins=("Figure", "FigureWidget"),
                 importers=("vectorbt._typing",))
    # The random-signal generators (built with vectorbt.indicators' factory at import)
    # serve Portfolio.from_random_signals only.
    defer_package_init("vectorbt.signals")
    defer_import("vectorbt.signals.generators", stand_ins=("RANDNX", "RPROBNX"),
                 importers=("vectorbt.portfolio.base",))
    # vectorbt._typing and vectorbt.generic.plotting take plotly's BaseFigure and
    # BaseTraceType for annotations; their module imports plotly's validators and
    # narwhals (~50 ms), for figures only.
    defer_import("plotly.basedatatypes", stand_ins=("BaseFigure", "BaseTraceType"),
                 importers=("vectorbt._typing", "vectorbt.generic.plotting"))
    # vectorbt.utils.datetime_ imports dateparser (language data, regex: ~45 ms) to
    # parse date strings, which a backtest on a DatetimeIndex never does; it uses the
    # module through its attributes only, so a lazy module suffices.
    defer_import("dateparser")
    if "vectorbt._settings" not in sys.modules:
        after_import("vectorbt.utils.config", _hook_settings_class)


def _accessor_classes(module: Any) -> tuple[type, ...]:
    return (module.Vbt_SRAccessor, module.Vbt_DFAccessor)


def _hook_accessors(module: Any) -> None:
    if package_init_pending("vectorbt"):
        for cls in _accessor_classes(module):
            cls.__getattr__ = _sub_accessor  # type: ignore[attr-defined]


def _unhook_accessors() -> None:
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


# -- vectorbt's plotly templates, registered on first use ------------------------------

def _hook_settings_class(config_module: Any) -> None:
    """Make ``SettingsConfig.register_template`` lazy as vectorbt defines the class.

    ``vectorbt._settings`` defines ``SettingsConfig`` (a ``Config``) and, in the same
    module body, calls its ``register_template``: the class is reachable in between
    only through ``Config.__init_subclass__``, set here until that class is seen.
    """
    base = config_module.Config
    inherited = base.__dict__.get("__init_subclass__")

    def init_subclass(cls: type, **kwargs: Any) -> None:
        if inherited is not None:
            inherited.__func__(cls, **kwargs)
        else:
            super(base, cls).__init_subclass__(**kwargs)
        if cls.__module__ == "vectorbt._settings" and cls.__name__ == "SettingsConfig":
            cls.register_template = _register_template_later  # type: ignore[attr-defined]
            if inherited is not None:
                base.__init_subclass__ = inherited
            else:
                del base.__init_subclass__

    base.__init_subclass__ = classmethod(init_subclass)


class _Pending:
    """A template recorded by :func:`_register_template_later`, not built yet."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def __repr__(self) -> str:
        return "<vectorbt template, built on first use>"


def _register_template_later(self: Any, theme: str) -> None:
    """``SettingsConfig.register_template`` of vectorbt, deferred.

    vectorbt's: ``pio.templates["vbt_" + theme] = go.layout.Template(<the theme's
    template>)``. Here the template's data is copied as it is now (as building the
    ``Template`` would) and the name registered with a placeholder that plotly's
    registry replaces by that ``Template`` when it is first read.
    """
    import plotly.io as pio

    data = self["plotting"]["themes"][theme]["template"]
    try:
        # A template read from vectorbt's JSON files: a JSON round trip is an exact
        # copy, and far cheaper than deepcopy of vectorbt's Config objects.
        snapshot = json.loads(json.dumps(data))
        exact = snapshot == data
    except (TypeError, ValueError):
        exact = False
    if not exact:  # (a user's template holding tuples or other non-JSON values)
        snapshot = copy.deepcopy(data)
    registry = pio.templates
    registry._templates["vbt_" + theme] = _Pending(snapshot)
    if not isinstance(registry, _LazyTemplates):
        registry.__class__ = _lazy_templates_class(type(registry))


class _LazyTemplates:
    """Marks plotly's template registry while it holds :class:`_Pending` templates."""


_LAZY_CLASSES: dict[type, type] = {}


def _lazy_templates_class(plain: Any) -> type:
    """plotly's ``TemplatesConfig`` building pending templates before any read of them."""
    lazy = _LAZY_CLASSES.get(plain)
    if lazy is not None:
        return lazy

    def build_pending(registry: Any) -> None:
        from plotly.graph_objs.layout import Template

        # Back to plotly's own class first: the assignments below go through its
        # validation, as vectorbt's did.
        registry.__class__ = plain
        for name, value in list(registry._templates.items()):
            if isinstance(value, _Pending):
                registry[name] = Template(value.data)

    def __getitem__(self: Any, item: Any) -> Any:
        build_pending(self)
        return plain.__getitem__(self, item)

    def items(self: Any) -> Any:
        build_pending(self)
        return plain.items(self)

    def merge_templates(self: Any, *args: Any) -> Any:
        build_pending(self)
        return plain.merge_templates(self, *args)

    lazy = type(plain.__name__, (plain, _LazyTemplates),
                {"__getitem__": __getitem__, "items": items,
                 "merge_templates": merge_templates, "__module__": plain.__module__})
    _LAZY_CLASSES[plain] = lazy
    return lazy
