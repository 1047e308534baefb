"""notebooks/04_dashboard.ipynb shows the user it creates, never the stored password hash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "04_dashboard.ipynb"

pytestmark = pytest.mark.slow


def _outputs(notebook: Path) -> list[str]:
    texts: list[str] = []
    for cell in json.loads(notebook.read_text())["cells"]:
        for out in cell.get("outputs", []):
            texts.append("".join(out.get("text", "")))
            texts.extend("".join(v) if isinstance(v, list) else str(v)
                         for k, v in out.get("data", {}).items() if k.startswith("text/"))
    return texts


def test_no_password_hash_in_the_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import papermill as pm

    for k, v in {"TRADELAB_HOME": str(ROOT), "TRADELAB__CACHE__DIR": str(tmp_path / "cache"),
                 "NUMBA_CACHE_DIR": str(ROOT / "var" / "numba-cache")}.items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False,
                        cwd=str(ROOT / "notebooks"))
    texts = _outputs(out)
    assert "('notebook-trader', 'trader')" in texts  # the cell shows who was created...
    joined = "\n".join(texts)
    assert "argon2" not in joined and "password_hash" not in joined  # ...and nothing secret
