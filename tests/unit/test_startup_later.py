"""Start-up: more of what a backtest does not load (dateparser, plotly's base types,
rich through structlog), the collector paused for a one-shot command; each deferred
thing still works, and equals the eager one, when used."""

from __future__ import annotations

import gc
import importlib
import inspect
import json
import subprocess
import sys
import textwrap
import typing
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tradelab._lazy import defer_import
from tradelab.cli._gc import paused_gc


def _run(code: str, *args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                         capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


#: Modules the real bodies of the deferred ones import (the deferred names themselves
#: are in sys.modules as stand-in or lazy modules).
_LATER = ("dateparser.date", "regex", "_plotly_utils.basevalidators", "narwhals",
          "rich.segment", "rich.syntax")


def test_a_backtest_loads_none_of_them_and_prints_the_same() -> None:
    got = _run("""
        import gc, io, json, sys
        from contextlib import redirect_stdout
        from tradelab.cli import main
        later = json.loads(sys.argv[1])
        sys.argv = ["tradelab", "backtest", "sma_cross", "--json"]
        out = io.StringIO()
        with redirect_stdout(out):
            try:
                main()
            except SystemExit as e:
                code = e.code
        loaded = [m for m in later if m in sys.modules]
        print(json.dumps({"code": code, "loaded": loaded, "gc": gc.isenabled(),
                          "stats": json.loads(out.getvalue())["total_return"]}))
    """, json.dumps(_LATER))
    assert got["code"] == 0 and got["loaded"] == [] and got["gc"] is True
    assert isinstance(got["stats"], float)


_DATEPARSER = """
    import sys, json
    from datetime import timezone
    if sys.argv[1] == "deferred":
        from tradelab.research import backtest
        from tradelab.data.sample import SampleSource
        backtest("sma_cross", SampleSource().load("SPX"))
        lazy = "dateparser.date" not in sys.modules
    else:
        import dateparser
        lazy = False
    from vectorbt.utils import datetime_
    dt = datetime_.to_tzaware_datetime("3 March 2021 10:30", tz=timezone.utc)
    print(json.dumps({"lazy": lazy, "dt": dt.isoformat(),
                      "same": datetime_.dateparser is sys.modules["dateparser"],
                      "module": type(sys.modules["dateparser"]).__name__}))
"""


def test_dateparser_loads_on_first_use_with_the_same_result() -> None:
    deferred = _run(_DATEPARSER, "deferred")
    plain = _run(_DATEPARSER, "plain")
    assert deferred["lazy"] is True and plain["lazy"] is False
    assert deferred["dt"] == plain["dt"] == "2021-03-03T10:30:00+00:00"
    assert deferred["same"] is True and deferred["module"] == "module"


_BASE_TYPES = """
    import sys, json
    if sys.argv[1] == "deferred":
        from tradelab.research import backtest
        from tradelab.data.sample import SampleSource
        res = backtest("sma_cross", SampleSource().load("SPX"))
        lazy = "_plotly_utils.basevalidators" not in sys.modules
        pf = res.portfolio
    else:
        import plotly.basedatatypes
        import vectorbt as vbt
        from tradelab.research import backtest
        from tradelab.data.sample import SampleSource
        res = backtest("sma_cross", SampleSource().load("SPX"))
        lazy = False
        pf = res.portfolio
    from plotly.basedatatypes import BaseFigure, BaseTraceType
    from vectorbt.generic import plotting
    fig = pf.orders.plot()
    scatter = plotting.Scatter(data=[1.0, 2.0, 3.0])
    print(json.dumps({"lazy": lazy, "figure": isinstance(fig, BaseFigure),
                      "traces": [isinstance(t, BaseTraceType) for t in scatter.traces],
                      "n": len(fig.data), "names": [t.name for t in fig.data],
                      "real": type(sys.modules["plotly.basedatatypes"]).__name__}))
"""


def test_plotly_base_types_load_with_the_first_figure_which_equals_the_eager_one() -> None:
    deferred = _run(_BASE_TYPES, "deferred")
    plain = _run(_BASE_TYPES, "plain")
    assert deferred["lazy"] is True and plain["lazy"] is False
    assert deferred["figure"] is True and deferred["traces"] == [True]
    assert {k: v for k, v in deferred.items() if k != "lazy"} == \
        {k: v for k, v in plain.items() if k != "lazy"}


_RICH = """
    import sys, json, io
    if sys.argv[1] == "plain":
        import rich.console, rich.traceback, rich.pretty  # before structlog: no deferral
    from tradelab.monitor.logging import configure_logging
    import structlog
    from structlog.dev import RichTracebackFormatter
    from structlog.tracebacks import ExceptionDictTransformer
    lazy = "rich.segment" not in sys.modules
    out = io.StringIO()
    configure_logging("INFO", stream=out)
    def fail():
        secret_local = {"k": [1, 2, 3]}
        raise ValueError("boom")
    def caught():  # (the traceback starts here: no module-level locals in it)
        try:
            fail()
        except ValueError:
            structlog.get_logger("t").exception("it_failed")
            return sys.exc_info()
    info = caught()
    logged = out.getvalue().splitlines()[1:]  # (the first line has the time)
    # What structlog uses rich for: its console traceback, and locals in dict tracebacks.
    rendered = io.StringIO()
    RichTracebackFormatter(color_system=None, width=100)(rendered, info)
    frames = ExceptionDictTransformer(show_locals=True)(info)[0]["frames"]
    print(json.dumps({"lazy": lazy, "logged": logged, "rich": rendered.getvalue(),
                      "locals": [f.get("locals") for f in frames],
                      "loaded": "rich.segment" in sys.modules}))
"""


def test_structlog_uses_rich_as_without_the_deferral() -> None:
    deferred = _run(_RICH, "deferred")
    plain = _run(_RICH, "plain")
    assert deferred["lazy"] is True and plain["lazy"] is False
    assert deferred["loaded"] is True  # rendering with rich loaded it
    assert "ValueError" in deferred["rich"] and "secret_local" in deferred["rich"]
    assert any("ValueError: boom" in line for line in deferred["logged"])
    assert {k: v for k, v in deferred.items() if k != "lazy"} == \
        {k: v for k, v in plain.items() if k != "lazy"}


# -- stand-ins named in annotations --------------------------------------------------------

@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    monkeypatch.syspath_prepend(str(tmp_path))
    made: list[str] = []

    def make(files: dict[str, str]) -> str:
        name = f"later_pkg_{len(made)}_{tmp_path.name.replace('-', '_')}"
        made.append(name)
        for rel, source in files.items():
            path = tmp_path / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        return name

    yield make
    for mod in [m for m in sys.modules if m.split(".")[0] in made]:
        del sys.modules[mod]


def test_a_stand_in_in_an_annotation_does_not_load_its_module(
        package: Callable[..., str]) -> None:
    name = package({"__init__.py": "", "heavy.py": """
        LOADED = True
        class Base:
            pass
    """, "user.py": """
        import typing
        from .heavy import Base
        MAYBE = typing.Optional[Base]
        BOTH = typing.Union[typing.Tuple[int, ...], Base]
        def draw(fig: typing.Optional[Base] = None) -> typing.List[Base]:
            return []
    """})
    defer_import(f"{name}.heavy", stand_ins=("Base",), importers=(f"{name}.user",))
    user = importlib.import_module(f"{name}.user")
    assert "LOADED" not in vars(sys.modules[f"{name}.heavy"])  # typing did not load it
    assert user.Base in typing.get_args(user.MAYBE)
    assert inspect.signature(user.draw).parameters["fig"].default is None
    assert isinstance(user.Base(), sys.modules[f"{name}.heavy"].Base)  # a call loads it
    assert sys.modules[f"{name}.heavy"].LOADED is True


# -- the paused collector --------------------------------------------------------------

def test_paused_gc_runs_the_command_without_collections_then_collects_again() -> None:
    seen: list[bool] = []

    @paused_gc
    def command(*, x: int, fail: bool = False) -> int:
        """A command."""
        seen.append(gc.isenabled())
        if fail:
            raise RuntimeError("failed")
        return 2 * x

    assert gc.isenabled()
    try:
        assert command(x=3) == 6
        assert seen == [False] and gc.isenabled()
        assert gc.get_freeze_count() == 0  # promoted to the oldest generation, not frozen
        with pytest.raises(RuntimeError, match="failed"):
            command(x=1, fail=True)
        assert seen == [False, False] and gc.isenabled()  # back on after a raise too
        gc.disable()
        assert command(x=1) == 2 and not gc.isenabled()  # off before: left off
    finally:
        gc.enable()
    # typer reads the command's signature and help through the wrapper.
    assert list(inspect.signature(command).parameters) == ["x", "fail"]
    assert command.__doc__ == "A command."


def test_a_cycle_made_while_paused_is_still_collected() -> None:
    class Node:
        other: Any = None

    @paused_gc
    def command() -> weakref.ref[Node]:
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle: reference counting alone never frees it
        return weakref.ref(a)

    ref = command()
    assert ref() is not None
    gc.collect()
    assert ref() is None


def test_paused_gc_keeps_the_backtest_commands_options() -> None:
    from tradelab.cli.research_cmd import backtest_cmd

    params = inspect.signature(backtest_cmd).parameters
    # the grouped options (with_options) as typer sees them, through paused_gc
    assert {"strategy", "as_json", "param", "sl", "fees"} <= set(params)
