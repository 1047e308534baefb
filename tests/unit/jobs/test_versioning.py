"""Code version and data fingerprint identify what a run executed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd

from tradelab.jobs.versioning import bars_fingerprint, code_version


def test_content_hash_changes_with_the_notebook_or_the_strategy(tmp_path: Path) -> None:
    nb, strat = tmp_path / "n.ipynb", tmp_path / "s.py"
    nb.write_text("{}")
    strat.write_text("x = 1\n")
    a = code_version(nb, strat)
    assert a.code_version.startswith("sha256:") and a.git_commit is None
    strat.write_text("x = 2\n")
    b = code_version(nb, strat)
    assert b.notebook_sha256 == a.notebook_sha256 and b.strategy_sha256 != a.strategy_sha256
    assert b.code_version != a.code_version


def test_a_clean_git_checkout_is_identified_by_its_commit(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True,
                              text=True).stdout.strip()

    git("init", "-q")
    nb = tmp_path / "n.ipynb"
    nb.write_text("{}")
    git("add", "n.ipynb")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "x")
    clean = code_version(nb)
    assert clean.code_version == f"git:{git('rev-parse', 'HEAD')}"
    nb.write_text('{"changed": 1}')
    dirty = code_version(nb)
    assert dirty.code_version.startswith("sha256:") and dirty.git_commit == clean.git_commit


def test_bars_fingerprint_is_stable_and_sensitive(spx: pd.DataFrame) -> None:
    year = spx.loc["2018"]
    assert bars_fingerprint(year) == bars_fingerprint(year.copy())
    changed = year.copy()
    changed.iloc[10, changed.columns.get_loc("close")] += 0.01
    assert bars_fingerprint(changed) != bars_fingerprint(year)
    assert bars_fingerprint(year.iloc[1:]) != bars_fingerprint(year)
