"""notebooks/03_live_job.ipynb reports a run without a log line per order in its outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "03_live_job.ipynb"

pytestmark = pytest.mark.slow


def test_outputs_hold_the_report_not_info_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import papermill as pm

    for k, v in {"TRADELAB_HOME": str(ROOT), "TRADELAB__CACHE__DIR": str(tmp_path / "cache"),
                 "NUMBA_CACHE_DIR": str(ROOT / "var" / "numba-cache")}.items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False,
                        cwd=str(ROOT / "notebooks"),
                        parameters={"duration": "365D", "db": f"sqlite:///{tmp_path / 'j.db'}"})
    streams = [(o["name"], "".join(o["text"])) for c in json.loads(out.read_text())["cells"]
               for o in c.get("outputs", []) if o.get("output_type") == "stream"]
    stdout = "".join(text for name, text in streams if name == "stdout")
    assert " fills, 0 risk alerts" in stdout  # the run's own report line is there...
    # ...its drift check against research over its own bars (a paper replay: none)...
    assert re.search(r"trades: ([1-9]\d*) run, \1 research, 0 differ", stdout)
    assert "threshold 1.0000%: within" in stdout
    summary = json.loads(out.read_text())["cells"][-1]["outputs"][0]["data"]["text/plain"]
    assert "'drift': 0.0" in "".join(summary)
    # ...and no structlog line: before, every order printed engine_started/order_transition lines.
    assert [text for name, text in streams if name == "stderr"] == []
    assert "[info" not in stdout and "order_transition" not in stdout

