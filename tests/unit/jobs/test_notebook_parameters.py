"""Papermill can read every parameter of the shipped notebooks (``--help-notebook``, ``tradelab run``)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import papermill as pm
import pytest

from tradelab.jobs.execute import unknown_parameters

NOTEBOOKS = sorted((Path(__file__).resolve().parents[3] / "notebooks").glob("*.ipynb"))


def _assigned(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text())["cells"]
    source = "".join(next((c["source"] for c in cells
                           if "parameters" in c.get("metadata", {}).get("tags", [])), []))
    return [t.id for node in ast.parse(source).body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_papermill_reads_every_parameter(notebook: Path) -> None:
    assert list(pm.inspect_notebook(str(notebook))) == _assigned(notebook)


def test_the_live_job_parameters_have_literal_defaults() -> None:
    found = pm.inspect_notebook(str(NOTEBOOKS[[p.name for p in NOTEBOOKS].index("03_live_job.ipynb")]))
    assert {"duration", "end", "db"} <= set(found)
    assert (found["end"]["default"], found["db"]["default"]) == ("None", "None")
    assert found["duration"]["inferred_type_name"] == "Optional[str]"


def test_unknown_parameters_are_named() -> None:
    live = next(p for p in NOTEBOOKS if p.name == "03_live_job.ipynb")
    assert unknown_parameters(live, {"stratgy": "sma_cross", "symbol": "SPX"}) == ["stratgy"]
    assert unknown_parameters(live, {"strategy": "sma_cross", "end": "2018-01-01"}) == []


def test_a_notebook_without_a_parameters_cell_refuses_every_parameter() -> None:
    research = next(p for p in NOTEBOOKS if p.name.startswith("01_"))
    assert pm.inspect_notebook(str(research)) == {}
    assert unknown_parameters(research, {"stratgy": "sma_cross"}) == ["stratgy"]
    assert unknown_parameters(research, {}) == []
