"""The project's promises about itself: packaging, public API, import cost."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

import tradelab


def _key(req: str) -> tuple[str, str]:
    m = re.match(r"\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)", req)
    assert m, req
    return m.group(1).lower().replace("_", "-"), m.group(3).replace(" ", "")


def test_environment_yml_lists_the_same_packages_and_ranges(project_root: Path) -> None:
    meta = tomllib.loads((project_root / "pyproject.toml").read_text())["project"]
    wanted = dict(_key(r) for r in [*meta["dependencies"], *meta["optional-dependencies"]["dev"]])
    env = yaml.safe_load((project_root / "environment.yml").read_text())
    listed = dict(_key(r) for r in env["dependencies"]
                  if isinstance(r, str) and not r.startswith(("python", "pip ", "pip\n")) and r != "pip")
    assert listed == wanted


def test_all_is_the_lazy_export_table() -> None:
    assert sorted(tradelab.__all__) == sorted([*tradelab._EXPORTS, "__version__"])
    for name in tradelab._EXPORTS:
        assert getattr(tradelab, name) is not None, name


def test_import_does_not_load_the_research_stack() -> None:
    code = ("import sys, tradelab; heavy = [m for m in ('vectorbt', 'numba', 'holoviews', 'panel', "
            "'pandas') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_help_does_not_load_the_research_stack() -> None:
    code = ("import sys; from tradelab.cli import app; "
            "print(','.join(m for m in ('vectorbt', 'numba', 'holoviews') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
