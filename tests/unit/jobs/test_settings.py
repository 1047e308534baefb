"""config/jobs.toml: defaults merge into jobs; every bad field is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradelab.errors import ConfigError
from tradelab.jobs.settings import load_jobs, parse_jobs

ROOT = Path(__file__).resolve().parents[3]


def test_the_shipped_jobs_file_is_valid_and_points_at_real_notebooks() -> None:
    specs = load_jobs(ROOT / "config" / "jobs.toml")
    assert specs
    for spec in specs.values():
        assert (ROOT / spec.notebook).is_file()
        assert spec.calendar == "XNYS"


def test_defaults_merge_and_parameters_merge_key_by_key() -> None:
    specs = parse_jobs({
        "defaults": {"timezone": "Europe/London", "retries": 2, "parameters": {"symbol": "SPX", "a": 1}},
        "jobs": {"one": {"notebook": "n.ipynb", "cron": "0 9 * * *", "parameters": {"a": 2}},
                 "two": {"notebook": "n.ipynb", "cron": "0 9 * * *", "retries": 0}}})
    assert specs["one"].timezone == "Europe/London" and specs["one"].retries == 2
    assert specs["one"].parameters == {"symbol": "SPX", "a": 2}
    assert specs["two"].retries == 0 and specs["two"].overlap == "skip"


def test_problems_name_the_job_and_field() -> None:
    with pytest.raises(ConfigError) as err:
        parse_jobs({"jobs": {"bad": {"notebook": "n.ipynb", "cron": "0 9 *", "overlap": "maybe",
                                     "timezone": "Mars/Olympus"}},
                    "extra": {}})
    text = "\n".join(err.value.problems)
    for needle in ("jobs.bad.cron", "jobs.bad.overlap", "jobs.bad.timezone", "[extra]"):
        assert needle in text


def test_a_missing_file_means_no_jobs(tmp_path: Path) -> None:
    assert load_jobs(tmp_path / "nope.toml") == {}
