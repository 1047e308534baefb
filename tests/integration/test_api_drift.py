"""`GET /runs/{id}/drift`: a stored run's drift report over the API, as `tradelab parity
--run --json` prints it, from a real paper run in a real SQLite store; the answers for an
unknown run, a run without recorded bars, a viewer's role and an API without reports."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.unit.api.helpers import build

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "var/numba-cache"))  # research imports vectorbt

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, str, int]:
    """The composition root on a fresh store, and one paper run of sma_cross in it."""
    from tradelab.app import build as build_app
    from tradelab.config import load_config

    tmp = tmp_path_factory.mktemp("api_drift")
    url = f"sqlite:///{tmp / 'api.db'}"
    tl = build_app(load_config(environ={"TRADELAB_HOME": str(ROOT), "PATH": os.environ["PATH"],
                                        "TRADELAB__CACHE__DIR": str(tmp / "cache"),
                                        "TRADELAB__STORE__URL": url}, home=ROOT))
    engine = tl.engine("sma_cross", "SPX", source="sample", account="drifty", start="2016-01-01",
                       end="2018-12-31")
    run_id = int(engine.run().run_id)
    build(url)  # the API's users, and the helpers' seeded run (without recorded bars)
    return tl, url, run_id


def test_a_viewer_reads_a_runs_drift_report(stored: tuple[Any, str, int]) -> None:
    tl, url, run_id = stored
    # the composition root's report function (this app's bars and strategies)
    h = build(url, users=False, seed=False, drift=tl.api(dev=True).state.services.drift)
    body = h.client.get(f"/runs/{run_id}/drift", headers=h.headers("viewer"))
    assert body.status_code == 200, body.text
    report = body.json()
    fills = tl.store.fills("drifty", run_id)
    assert report["run_id"] == run_id and report["symbol"] == "SPX"
    assert abs(report["gap"]) < 1e-6 and not report["exceeded"]
    assert report["trades"]["run"] == report["trades"]["research"] == len(fills) > 5
    assert report["trades"]["differing"] == 0 and len(report["rows"]) == len(fills)
    assert h.client.get(f"/runs/{run_id}/drift").status_code == 401


def test_unknown_runs_runs_without_bars_and_an_api_without_reports(
        stored: tuple[Any, str, int]) -> None:
    from tradelab.app import drift_reports

    tl, url, run_id = stored
    h = build(url, users=False, seed=False,
              drift=drift_reports(tl.settings, tl.store))  # builds its app on first use
    viewer = h.headers("viewer")
    assert h.client.get("/runs/999999/drift", headers=viewer).status_code == 404
    seeded = max(r.id for r in h.store.runs("paper"))  # the helpers' run: no recorded bars
    conflict = h.client.get(f"/runs/{seeded}/drift", headers=viewer)
    assert conflict.status_code == 409 and "no recorded bars" in conflict.json()["detail"]
    assert h.client.get(f"/runs/{run_id}/drift", headers=viewer).json()["run_id"] == run_id
    bare = build(url, users=False, seed=False)  # an API built without a report function
    assert bare.client.get(f"/runs/{run_id}/drift",
                           headers=bare.headers("viewer")).status_code == 503
