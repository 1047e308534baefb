"""Masking query tokens must not corrupt archived notebooks that inline Bokeh's JavaScript."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nbformat

from tradelab.monitor.redact import MASK, redact_file, redact_text


def _bokeh_js() -> str:
    spec = importlib.util.find_spec("bokeh")
    assert spec is not None and spec.submodule_search_locations
    root = Path(next(iter(spec.submodule_search_locations)))
    return (root / "server" / "static" / "js" / "bokeh.min.js").read_text(encoding="utf-8")


def test_an_archived_notebook_with_inline_bokeh_js_stays_valid(tmp_path: Path) -> None:
    js = _bokeh_js()
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("import hvplot.pandas")
    cell.outputs = [nbformat.v4.new_output(
        "display_data", data={"application/javascript": js, "text/plain": "ok"})]
    nb.cells = [cell]
    path = tmp_path / "output.ipynb"
    nbformat.write(nb, path)

    redact_file(path)

    # Before the fix ``&&s.call(r,n,this.sender)}}t.Signal=l,l.__name__=\"Signal\"`` lost
    # ``l,l.__name__=\`` to the mask and the file stopped being JSON.
    back = nbformat.read(path, as_version=4)
    out = back.cells[0].outputs[0]["data"]["application/javascript"]
    start = js.index("t.Signal=")
    assert js[start:start + 40] in out
    assert len(out) >= len(js) - 100  # nothing but an occasional literal URL key is masked


def test_url_query_tokens_are_still_masked_also_inside_json() -> None:
    assert redact_text("GET https://h/x?api_key=abcd1234&v=1") == f"GET https://h/x?api_key={MASK}&v=1"
    assert redact_text("https://h/x?X-Amz-Signature=9f8e7d") == f"https://h/x?X-Amz-Signature={MASK}"
    escaped = json.dumps({"u": "https://h/?token=s3cr3t-value"})
    masked = redact_text(escaped)
    assert "s3cr3t-value" not in masked and json.loads(masked)["u"] == f"https://h/?token={MASK}"
