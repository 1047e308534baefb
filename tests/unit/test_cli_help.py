"""Every command's rendered ``--help`` keeps the bracketed config sections its text names."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from tradelab.cli import app

SECTION = re.compile(r"\[[a-z_.]+\]")


def _commands(cmd: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, cmd)]
    if hasattr(cmd, "commands"):  # a group (typer vendors its own click)
        for name, sub in sorted(cmd.commands.items()):
            found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def _named_sections(cmd: Any) -> set[str]:
    texts = [cmd.help or ""] + [getattr(p, "help", None) or "" for p in cmd.params]
    return {m for text in texts for m in SECTION.findall(text)}


def test_some_help_text_names_sections() -> None:
    named = set().union(*(_named_sections(c) for _p, c in COMMANDS))
    assert {"[data]", "[store]", "[engine]"} <= named


@pytest.mark.parametrize("path", [p for p, c in COMMANDS if _named_sections(c)], ids=" ".join)
def test_help_keeps_bracketed_section_names(path: tuple[str, ...]) -> None:
    cmd = dict(COMMANDS)[path]
    res = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    for name in _named_sections(cmd):
        assert name in text, f"{' '.join(path)} --help lost {name}"


def test_top_level_help_lists_every_command_once_in_its_workflow_section() -> None:
    from tradelab.cli._app import SECTIONS

    group = typer.main.get_command(app)
    names = set(group.commands)  # type: ignore[attr-defined]
    placed = [n for _title, section in SECTIONS for n in section]
    assert sorted(placed) == sorted(names), "a command is missing from SECTIONS, or unknown"
    out = CliRunner().invoke(app, ["--help"]).output
    headings = [line[:-1] for line in out.splitlines() if line.endswith(":") and
                not line.startswith(" ")]
    assert headings[-len(SECTIONS):] == [title for title, _ in SECTIONS]
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("  ")
              and line.split()[0] in names]
    assert listed == placed
