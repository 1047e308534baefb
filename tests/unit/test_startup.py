"""Start-up cost: what a command imports that it does not use (figures: bench/startup.py)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tradelab._lazy import (
    after_import,
    around_import,
    defer_import,
    defer_package_init,
    package_init_pending,
    run_package_init,
)


def _run(code: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_research_does_not_compile_the_iri_grammar_at_import() -> None:
    # vectorbt → plotly → nbformat → jsonschema → rfc3987_syntax (a lark grammar compiled
    # at import, over a second): deferred until a notebook feature uses nbformat.
    got = _run("import sys, json\n"
               "import tradelab.research.simulate, vectorbt\n"
               "before = [m for m in ('jsonschema', 'rfc3987_syntax') if m in sys.modules]\n"
               "import nbformat\n"
               "nb = nbformat.v4.new_notebook()\n"
               "nbformat.validate(nb)\n"
               "import plotly.io._renderers as r\n"
               "print(json.dumps({'before': before, 'version': nbformat.__version__,\n"
               "                  'same': r.nbformat is nbformat,\n"
               "                  'after': 'jsonschema' in sys.modules}))")
    assert got["before"] == []
    # Used, it is the real module, and plotly holds the same one.
    assert got["version"] and got["same"] is True and got["after"] is True


def test_defer_import_is_a_no_op_for_a_module_already_imported() -> None:
    got = _run("import sys, json, colorsys\n"
               "from tradelab._lazy import defer_import\n"
               "defer_import('colorsys'); defer_import('no_such_module_here')\n"
               "import colorsys as again\n"
               "try:\n"
               "    import no_such_module_here\n"
               "    missing = False\n"
               "except ImportError:\n"
               "    missing = True\n"
               "print(json.dumps({'same': again is sys.modules['colorsys'],\n"
               "                  'type': type(again).__name__, 'missing': missing}))")
    assert got == {"same": True, "type": "module", "missing": True}


# -- defer_package_init, after_import, stand-ins: on throwaway packages ------------------

@pytest.fixture
def make_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """Write a package (``{relative path: source}``) under a unique name; return the name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []

    def make(files: dict[str, str]) -> str:
        name = f"startup_pkg_{len(names)}_{tmp_path.name.replace('-', '_')}"
        names.append(name)
        for rel, source in files.items():
            path = tmp_path / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        return name

    yield make
    for mod in [m for m in sys.modules if any(m.split(".")[0] == n for n in names)]:
        del sys.modules[mod]


_BODY = """
    import os
    RUNS = int(os.environ.get("_UNUSED_", "0")) + 1
    from .leaf import Thing
    from . import other
    EVERYTHING = [Thing, other.VALUE]
"""


def test_a_deferred_package_runs_its_body_only_for_what_the_body_binds(
        make_package: Callable[..., str]) -> None:
    name = make_package({"__init__.py": _BODY, "leaf.py": "class Thing:\n    pass\n",
                         "other.py": "VALUE = 42\n"})
    defer_package_init(name, {"Thing": f"{name}.leaf"})
    pkg = importlib.import_module(name)
    sub = importlib.import_module(f"{name}.leaf")  # a submodule loads without the body
    assert package_init_pending(name) and "RUNS" not in vars(pkg)
    assert pkg.Thing is sub.Thing  # an export: from its submodule, still no body
    exec(f"from {name} import other", {})  # from-import of a submodule: no body either
    assert pkg.other.VALUE == 42 and package_init_pending(name)
    assert [sub.Thing, 42] == pkg.EVERYTHING  # anything else runs the body, once
    assert not package_init_pending(name) and pkg.RUNS == 1
    assert "__getattr__" not in vars(pkg) and "EVERYTHING" in dir(pkg)
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        _ = pkg.missing


def test_dir_and_run_package_init_run_the_body(make_package: Callable[..., str]) -> None:
    files = {"__init__.py": _BODY, "leaf.py": "class Thing:\n    pass\n",
             "other.py": "VALUE = 1\n"}
    first, second = make_package(files), make_package(files)
    for name in (first, second):
        defer_package_init(name)
        importlib.import_module(name)
    assert "EVERYTHING" in dir(sys.modules[first])
    run_package_init(second)
    run_package_init(second)  # no-op the second time
    assert sys.modules[second].RUNS == 1 and not package_init_pending(second)


def test_after_import_calls_back_once_the_module_is_loaded(
        make_package: Callable[..., str]) -> None:
    name = make_package({"__init__.py": "", "mod.py": "X = 3\n"})
    seen: list[int] = []
    after_import(f"{name}.mod", lambda m: seen.append(m.X))
    assert seen == []
    importlib.import_module(f"{name}.mod")
    after_import(f"{name}.mod", lambda m: seen.append(m.X + 1))  # already loaded: at once
    assert seen == [3, 4]


def test_around_import_runs_the_body_inside_the_context_even_when_it_raises(
        make_package: Callable[..., str]) -> None:
    name = make_package({"__init__.py": "", "mod.py": "import sys\nSEEN = sys.flag_now\n",
                         "bad.py": "raise RuntimeError('broken body')\n"})
    events: list[str] = []

    @contextmanager
    def flagged(module: ModuleType) -> Iterator[None]:
        events.append(f"enter {module.__name__} {sorted(vars(module)).count('SEEN')}")
        sys.flag_now = "set"  # type: ignore[attr-defined]
        try:
            yield
        finally:
            del sys.flag_now  # type: ignore[attr-defined]
            events.append("exit")

    assert around_import(f"{name}.mod", flagged) is True
    assert importlib.import_module(f"{name}.mod").SEEN == "set"
    assert events == [f"enter {name}.mod 0", "exit"] and not hasattr(sys, "flag_now")
    assert around_import(f"{name}.mod", flagged) is False  # already imported: no-op
    around_import(f"{name}.bad", flagged)
    with pytest.raises(RuntimeError, match="broken body"):
        importlib.import_module(f"{name}.bad")
    assert events[-1] == "exit" and not hasattr(sys, "flag_now")


def test_stand_ins_defer_a_module_that_is_imported_from(
        make_package: Callable[..., str]) -> None:
    name = make_package({"__init__.py": "", "slow/__init__.py": """
        LOADED = True
        class Scale:
            factor = 3
            def times(self, x):
                return x * self.factor
        scale = Scale()
        def twice(x, *, plus=0):
            return 2 * x + plus
    """, "slow/part.py": "Y = 5\n", "user.py": "from .slow import twice, scale\n"})
    defer_import(f"{name}.slow", stand_ins=("twice", "scale"), importers=(f"{name}.user",))
    user = importlib.import_module(f"{name}.user")
    proxy = sys.modules[f"{name}.slow"]
    assert "LOADED" not in vars(proxy)  # imported from, but not run
    assert importlib.import_module(f"{name}.slow.part").Y == 5  # submodules still import
    assert user.twice(4, plus=1) == 9 and user.scale.times(2) == 6  # first use loads it
    real = sys.modules[f"{name}.slow"]
    assert real is not proxy and real.LOADED is True
    assert sys.modules[name].slow is real  # on the parent package too
    assert proxy.twice is real.twice  # once loaded, the proxy forwards everything


def test_stand_ins_go_to_the_named_importers_only(make_package: Callable[..., str]) -> None:
    name = make_package({"__init__.py": "", "slow.py": "def twice(x):\n    return 2 * x\n",
                         "other.py": "from .slow import twice\n"})
    defer_import(f"{name}.slow", stand_ins=("twice",), importers=(f"{name}.user",))
    other = importlib.import_module(f"{name}.other")  # not an importer: the real function
    assert other.twice is sys.modules[f"{name}.slow"].twice and other.twice(2) == 4
    assert type(other.twice).__name__ == "function"


# -- vectorbt in a fresh process -------------------------------------------------------

def test_backtest_imports_the_simulation_not_all_of_vectorbt() -> None:
    got = _run("import sys, json\n"
               "from tradelab.cli import main\n"
               "sys.argv = ['tradelab', 'backtest', 'sma_cross']\n"
               "try:\n"
               "    main()\n"
               "except SystemExit as e:\n"
               "    code = e.code\n"
               "from tradelab._lazy import package_init_pending\n"
               "loaded = [m for m in ('vectorbt.data', 'vectorbt.labels', 'vectorbt.messaging',\n"
               "                      'ccxt', 'scipy.stats._stats_py', 'numpy.f2py.crackfortran',\n"
               "                      'plotly.graph_objs.layout', 'sklearn', 'scipy.linalg._basic',\n"
               "                      'ipywidgets', 'anywidget', 'vectorbt.indicators')\n"
               "          if m in sys.modules]\n"
               "print(json.dumps({'code': code, 'loaded': loaded,\n"
               "                  'simulated': 'vectorbt.portfolio.base' in sys.modules,\n"
               "                  'blas': 'scipy.linalg.cython_blas' in sys.modules,\n"
               "                  'pending': [package_init_pending(p)\n"
               "                              for p in ('vectorbt', 'scipy.linalg')]}))")
    # (numba's BLAS check loaded scipy.linalg.cython_blas, without scipy.linalg's body)
    assert got == {"code": 0, "loaded": [], "simulated": True, "blas": True,
                   "pending": [True, True]}


def test_vectorbt_is_whole_once_used_after_a_deferred_backtest() -> None:
    got = _run(textwrap.dedent("""
        import sys, json
        import numpy as np, pandas as pd
        from tradelab.research import backtest
        from tradelab.data.sample import SampleSource
        bars = SampleSource().load("SPX")
        res = backtest("sma_cross", bars)  # vectorbt's __init__ has not run
        pf = res.portfolio
        import vectorbt as vbt
        import vectorbt._settings
        close = bars["close"]
        entries = close > close.rolling(20).mean()
        from tradelab._lazy import package_init_pending
        pending = package_init_pending("vectorbt")
        first = entries.vbt.signals.first()  # a sub-accessor the backtest never loaded
        ma = vbt.MA.run(close, 10).ma  # a name only vectorbt's __init__ binds
        returns = pf.returns().to_numpy()
        stats = pf.returns_stats()  # skew and kurtosis: scipy.stats, through the stand-ins
        import scipy.stats
        import vectorbt.returns.accessors as acc, vectorbt.returns.metrics as met
        import numpy.f2py
        import scipy.linalg
        print(json.dumps({
            "pending": pending, "signals": int(first.sum()), "ma": float(ma.iloc[-1]),
            "ma_ref": float(close.rolling(10).mean().iloc[-1]),
            "settings": vbt.settings is vectorbt._settings.settings,
            "portfolio": vbt.Portfolio is type(pf),
            "ohlcv": hasattr(bars.vbt, "ohlcv"),
            "finite": bool(np.isfinite([stats["Skew"], stats["Kurtosis"]]).all()),
            "skew": [float(f(returns, nan_policy="omit")) for f in (acc.skew, scipy.stats.skew)],
            "kurt": [float(f(returns, fisher=False)) for f in (acc.kurtosis, scipy.stats.kurtosis)],
            "ppf": [float(n.ppf(0.975)) for n in (met.norm, scipy.stats.norm)],
            "stats_module": type(sys.modules["scipy.stats"].norm).__name__,
            "f2py": callable(numpy.f2py.run_main),
            "solve": scipy.linalg.solve([[2.0, 0.0], [0.0, 4.0]], [1.0, 1.0]).tolist(),
        }))
    """))
    assert got["pending"] is True  # until the sub-accessor ran vectorbt's __init__
    assert got["signals"] > 0 and got["ma"] == pytest.approx(got["ma_ref"], rel=1e-12)
    assert got["settings"] is True and got["portfolio"] is True and got["ohlcv"] is True
    # vectorbt's stand-ins for scipy.stats.skew, kurtosis and norm give scipy's values.
    assert got["finite"] is True
    for name in ("skew", "kurt", "ppf"):
        stand_in, real = got[name]
        assert stand_in == real, name
    assert got["stats_module"] == "norm_gen"  # the real scipy.stats is in sys.modules
    assert got["f2py"] is True  # deferred numpy.f2py loads when used
    assert got["solve"] == [0.5, 0.25]  # so does scipy.linalg's body


_TEMPLATES = textwrap.dedent("""
    import sys, json
    if sys.argv[1] == "deferred":
        import tradelab.research.simulate  # (installs the deferrals)
    import pandas as pd
    import vectorbt as vbt
    import plotly.io as pio
    vbt.settings  # (vectorbt's __init__ and _settings run)
    built = "plotly.graph_objs.layout" in sys.modules
    names = list(pio.templates)
    vbt.settings.set_theme("dark")
    fig = pd.Series([1.0, 2.0, 3.0]).vbt.plot()
    print(json.dumps({"built": built, "names": names,
                      "figure": fig.layout.template.to_plotly_json(),
                      **{n: pio.templates[n].to_plotly_json()
                         for n in ("vbt_light", "vbt_dark", "vbt_seaborn")}}, sort_keys=True))
""")


def test_vectorbt_templates_are_built_on_first_use_and_equal_vectorbts_own() -> None:
    def run(mode: str) -> dict[str, Any]:
        out = subprocess.run([sys.executable, "-c", _TEMPLATES, mode], capture_output=True,
                             text=True, check=True)
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))

    deferred, plain = run("deferred"), run("plain")
    assert deferred.pop("built") is False  # registered, not built, until plotly reads them
    assert plain.pop("built") is True
    assert deferred["names"][-3:] == ["vbt_light", "vbt_dark", "vbt_seaborn"]
    assert deferred == plain  # same names in the same order, same templates, same figure


_SKLEARN = textwrap.dedent("""
    import sys, json, inspect, os
    mode, first = sys.argv[1], sys.argv[2]
    if mode == "deferred":
        import tradelab.research.simulate  # (installs the deferrals)
    import pandas as pd
    import vectorbt.portfolio.base  # (what a backtest loads)
    import vectorbt.generic.accessors as acc
    loaded = sorted(m for m in sys.modules if m.split(".")[0] == "sklearn")
    sr = pd.Series([1.0, 5.0, 2.0, 8.0, 3.0])
    out = {}
    if first == "transform":  # transform() first: its `except NotFittedError` path
        from sklearn.preprocessing import MinMaxScaler
        out["transform"] = sr.vbt.transform(MinMaxScaler((-1, 1))).tolist()
    out["scale"] = sr.vbt.scale().tolist()
    out["minmax"] = sr.vbt.minmax_scale(feature_range=(-1, 1)).tolist()
    out["power"] = sr.vbt.power_transform().tolist()
    out["signatures"] = {n: str(inspect.signature(getattr(acc.GenericAccessor, n)))
                         for n in acc.transform_config}
    out["doc"] = acc.GenericAccessor.quantile_transform.__doc__
    import sklearn.exceptions, sklearn.preprocessing, sklearn.utils.validation
    out["real"] = [acc.NotFittedError is sklearn.exceptions.NotFittedError,
                   acc.check_is_fitted is sklearn.utils.validation.check_is_fitted,
                   acc.MinMaxScaler is sklearn.preprocessing.MinMaxScaler,
                   acc.transform_config["scale"]["transformer"]
                   is sklearn.preprocessing.StandardScaler]
    out["init_ran"] = os.environ.get("KMP_INIT_AT_FORK")  # (set by sklearn's __init__)
    print(json.dumps({"loaded": loaded, "out": out}, sort_keys=True))
""")


@pytest.mark.parametrize("first", ["transform", "method"])
def test_vectorbt_imports_sklearn_on_first_use_with_the_same_results(first: str) -> None:
    def run(mode: str) -> dict[str, Any]:
        out = subprocess.run([sys.executable, "-c", _SKLEARN, mode, first],
                             capture_output=True, text=True, check=True,
                             env={k: v for k, v in os.environ.items()
                                  if k != "KMP_INIT_AT_FORK"})
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))

    deferred, plain = run("deferred"), run("plain")
    assert deferred["loaded"] == [] and "sklearn.preprocessing" in plain["loaded"]
    # Once used: the same values, signatures and docstrings as vectorbt's own, and
    # vectorbt's module holds scikit-learn's objects (whose __init__ ran as usual).
    assert deferred["out"] == plain["out"]
    assert deferred["out"]["real"] == [True, True, True, True]
    assert deferred["out"]["init_ran"] == "FALSE"


_FIGURES = textwrap.dedent("""
    import sys, json
    if sys.argv[1] == "deferred":
        from tradelab.research import backtest
        from tradelab.data.sample import SampleSource
        backtest("sma_cross", SampleSource().load("SPX"))
    import pandas as pd
    import plotly.graph_objects as go
    import vectorbt as vbt
    import vectorbt.utils.figure as vf
    sr = pd.Series([1.0, 3.0, 2.0], index=pd.date_range("2020", periods=3))
    fig = sr.vbt.plot()
    grid = vf.make_subplots(rows=2, cols=1)
    # Portfolio.from_random_signals: vectorbt.signals' generators, deferred too.
    random = [vbt.Portfolio.from_random_signals(sr, n=1, seed=42).total_return(),
              vbt.Portfolio.from_random_signals(sr, prob=0.5, seed=7).total_return()]
    print(json.dumps({"type": f"{type(fig).__module__}.{type(fig).__qualname__}",
                      "random": random,
                      "grid": type(grid).__name__,
                      "subclass": vf.FigureWidget.__bases__[0] is go.FigureWidget,
                      "utils": vbt.utils.FigureWidget is vf.FigureWidget,
                      "figure": json.loads(fig.to_json())}))
""")


def test_vectorbt_figures_after_a_deferred_backtest_equal_vectorbts_own() -> None:
    # The backtest took vectorbt.utils.figure's functions (and vectorbt.signals'
    # generators) as stand-ins and skipped vectorbt.utils' __init__; a figure then
    # loads them, as a plain import would.
    def run(mode: str) -> dict[str, Any]:
        out = subprocess.run([sys.executable, "-c", _FIGURES, mode], capture_output=True,
                             text=True, check=True)
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))

    deferred, plain = run("deferred"), run("plain")
    assert deferred["type"] == "vectorbt.utils.figure.FigureWidget"
    assert deferred["subclass"] is True and deferred["utils"] is True
    assert deferred == plain
