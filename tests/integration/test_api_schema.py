"""Schemathesis against a real server: the OpenAPI document matches the API's behaviour.

The schemathesis command line runs every phase (examples, coverage, fuzzing,
stateful) with every check it has (``--checks all``): no server errors,
documented statuses, content types, headers and bodies, schema-invalid requests
refused and schema-valid ones accepted, 405 with a true ``Allow`` for undeclared
methods, authentication enforced, deleted resources gone... It runs against a
real uvicorn server in its own process (``tests/integration/api_proc.py``: a
seeded store, a job runner, no rate limits), authenticated with an admin API
key, so RBAC does not hide the handlers and logging out cannot cut the run
short. Example counts are modest and the seed fixed (CI has two cores); one
worker, because schemathesis's threads race in CPython's ``ast`` module.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.api_proc import ApiProcess, serve

MAX_EXAMPLES = 10
SEED = 20261203


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[ApiProcess]:
    with serve(f"sqlite:///{tmp_path / 'api.db'}", tmp_path / "server.log") as proc:
        yield proc


@pytest.mark.slow
def test_schemathesis_finds_no_failure_with_all_checks(server: ApiProcess, tmp_path: Path) -> None:
    spec = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    operations = {f"{method.upper()} {path}" for path, ops in spec["paths"].items()
                  for method in ops}
    report = tmp_path / "report"
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json",
           "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
           "--workers", "1", "--generation-database", "none", "--no-color",
           "--header", f"Authorization: Bearer {server.api_key}",
           "--report", "junit", "--report-dir", str(report)]
    # cwd: schemathesis keeps its caches in the working directory.
    run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    output = run.stdout[-6000:] + run.stderr[-2000:]
    junits = list(report.glob("*.xml"))
    assert len(junits) == 1, output
    suite = ET.parse(junits[0]).getroot()
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    failed = {name: [(child.tag, (child.text or "")[:300]) for child in case]
              for name, case in cases.items() if len(case)}
    assert failed == {}, output
    assert run.returncode == 0, output
    assert operations <= set(cases), operations - set(cases)
