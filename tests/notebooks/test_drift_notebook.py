"""notebooks/06_drift.ipynb with papermill on a stored run (``run_id``, ``db``): it reports that
run's drift instead of running a session of its own. (The default, a fresh paper session, is
executed by ``pytest notebooks --nbval-lax``.)"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "06_drift.ipynb"

pytestmark = pytest.mark.slow


def test_parameters_are_what_papermill_reads() -> None:
    import papermill as pm

    params = pm.inspect_notebook(str(NOTEBOOK))
    assert {"run_id", "db", "threshold", "session_slippage"} <= set(params)
    assert params["run_id"]["default"] == "None"


def test_the_notebook_reports_on_a_given_stored_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import papermill as pm

    from tradelab.app import build
    from tradelab.config import load_config

    env = {"TRADELAB_HOME": str(ROOT), "TRADELAB__CACHE__DIR": str(tmp_path / "cache"),
           "NUMBA_CACHE_DIR": str(ROOT / "var" / "numba-cache")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    db = f"sqlite:///{tmp_path / 'stored.db'}"
    tl = build(load_config(environ=env, home=ROOT))
    store = tl.open_store(db)
    # The run stores the [research] convention (research replays it with that); its venue
    # charged more: 0.2% fees, what drift attributes to fees.
    venue = tl.broker("paper", replace(tl.execution, fees=0.002), {"SPX"})
    engine = tl.engine("sma_cross", "SPX", source="sample", start="2017-01-01", end="2018-06-30",
                       store=store, account="stored", broker=venue)
    run_id = int(engine.run().run_id)
    store.close()
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(str(NOTEBOOK), str(out), parameters={"run_id": run_id, "db": db},
                        kernel_name="python3", progress_bar=False, cwd=str(ROOT / "notebooks"))
    text = "\n".join("".join(o.get("text", "")) for c in json.loads(out.read_text())["cells"]
                     for o in c.get("outputs", []) if o.get("output_type") == "stream")
    assert f"drift of run {run_id} (sma_cross" in text
    assert "paper session" not in text and f"run {run_id}: sma_cross" in text
    assert "fees -" in text  # 0.2% fees against research's 0.05%
    assert "warning" not in text.lower() and "Traceback" not in text


def test_the_default_session_shows_its_venues_slippage_as_price_drift(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fresh session keeps research's convention (stored with the run) while its paper
    venue fills 5 bp worse: the report must find that gap, under "price"."""
    import papermill as pm

    for k, v in {"TRADELAB_HOME": str(ROOT), "TRADELAB__CACHE__DIR": str(tmp_path / "cache"),
                 "TRADELAB__STORE__URL": f"sqlite:///{tmp_path / 'fresh.db'}",
                 "NUMBA_CACHE_DIR": str(ROOT / "var" / "numba-cache")}.items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False,
                        cwd=str(ROOT / "notebooks"))
    text = "\n".join("".join(o.get("text", "")) for c in json.loads(out.read_text())["cells"]
                     for o in c.get("outputs", []) if o.get("output_type") == "stream")
    found = re.search(r"by cause: price ([+-][\d,]+\.\d+)", text)
    assert found is not None, text
    assert float(found.group(1).replace(",", "")) < 0  # bought higher, sold lower than research
