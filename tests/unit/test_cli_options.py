"""One definition of the data and execution options, taken by every command that loads bars."""

from __future__ import annotations

import pytest
import typer.main
from typer.testing import CliRunner

from tradelab.cli import app
from tradelab.cli._options import DataOptions, ExecOptions
from tradelab.execution import Execution

DATA = {"--source", "--symbol", "--start", "--end", "--csv", "--policy"}
EXECUTION = {"--cash", "--fees", "--fixed-fees", "--slippage", "--size", "--size-type", "--fill",
             "--fractional", "--whole", "--json"}


def _options(name: str) -> set[str]:
    group = typer.main.get_command(app)
    params = group.commands[name].params  # type: ignore[attr-defined]
    return {o for p in params for o in (*p.opts, *p.secondary_opts)}


@pytest.mark.parametrize("command", ["backtest", "sweep", "paper", "parity"])
def test_research_and_engine_commands_take_the_same_options(command: str) -> None:
    assert _options(command) >= DATA | EXECUTION


def test_check_takes_the_data_options() -> None:
    assert _options("check") >= DATA


def test_options_override_the_configured_convention_only_where_given() -> None:
    base = Execution(cash=1_000.0, fees=0.001)
    assert ExecOptions().apply(base) is base
    assert ExecOptions(size=5.0, size_type="amount").apply(base) == Execution(
        cash=1_000.0, fees=0.001, size=5.0, size_type="amount")
    with pytest.raises(ValueError, match="size_type"):
        ExecOptions(size_type="lots").apply(base)


@pytest.mark.parametrize(("options", "message"), [
    (DataOptions(start="2016-01-01", end="2015-01-01"), "--start 2016-01-01 is after --end 2015-01-01"),
    (DataOptions(policy="skip"), "--policy 'skip': expected raise, drop or fill"),
    (DataOptions(start="notadate"),
     "--start 'notadate': not a date/time (e.g. 2010-01-04 or 2010-01-04T15:30)"),
    (DataOptions(start="2015-01-01", end="2015-13-45"),
     "--end '2015-13-45': not a date/time (e.g. 2010-01-04 or 2010-01-04T15:30)"),
    (DataOptions(start="2016-01-01T00:00Z", end="2015-01-01"),
     "--start 2016-01-01T00:00Z is after --end 2015-01-01"),
])
def test_bad_ranges_and_policies_are_refused(options: DataOptions, message: str) -> None:
    with pytest.raises(ValueError) as err:
        options.check()
    assert str(err.value) == message


def test_check_says_why_a_range_is_empty(environ: dict[str, str]) -> None:
    res = CliRunner().invoke(app, ["check", "sma_cross", "--start", "2016-01-01", "--end", "2015-01-01"],
                             env=environ)
    assert res.exit_code == 2
    assert res.stderr.strip() == "error: --start 2016-01-01 is after --end 2015-01-01"


def test_check_on_fewer_bars_than_the_warmup_says_so(environ: dict[str, str]) -> None:
    res = CliRunner().invoke(app, ["check", "sma_cross", "--start", "2010-01-04", "--end", "2010-01-20"],
                             env=environ)
    assert res.exit_code == 2
    assert res.stderr.strip() == (
        "error: sma_cross: 12 bar(s) are too few to check; it reads 31 bars (its warmup): "
        "give a longer history (e.g. widen --start/--end)")


@pytest.mark.parametrize(("size", "size_type", "words"),
                         [(1.0, "percent", "entry size 100% of cash"),
                          (0.25, "percent", "entry size 25% of cash"),
                          (10.0, "amount", "entry size 10 units"),
                          (5000.0, "value", "entry size 5,000.00 in cash")])
def test_the_convention_line_says_what_the_entry_size_means(size: float, size_type: str,
                                                            words: str) -> None:
    from tradelab.cli._options import convention

    ex = Execution(size=size, size_type=size_type)  # type: ignore[arg-type]
    assert f", {words}, " in convention(ex)
    assert "entry size" not in convention(ex, entry_size=False)
