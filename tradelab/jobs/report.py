"""Helpers for notebooks run as jobs: report results back to the runner.

The runner starts the kernel with ``TRADELAB_RUN_DIR`` (the run's archive
folder) in its environment. :func:`record_result` merges values into
``<run dir>/result.json``, which the runner stores with the run (data
fingerprint, engine run id, summary figures). Outside a job (interactive use,
nbval) it does nothing and returns ``None``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

RESULT_FILE = "result.json"
ENV_RUN_DIR = "TRADELAB_RUN_DIR"


def run_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """The current job run's archive folder, or ``None`` outside a job."""
    value = (os.environ if environ is None else environ).get(ENV_RUN_DIR)
    return Path(value) if value else None


def record_result(environ: Mapping[str, str] | None = None, **values: Any) -> Path | None:
    """Merge ``values`` into the run's ``result.json`` (JSON-able; others become strings).

    Returns
    -------
    Path or None
        The file written, or ``None`` when not running as a job.
    """
    folder = run_dir(environ)
    if folder is None:
        return None
    path = folder / RESULT_FILE
    current = json.loads(path.read_text()) if path.is_file() else {}
    current.update(values)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(current, default=str, indent=2, sort_keys=True))
    tmp.replace(path)  # atomic: the runner never reads half a file
    return path


def read_result(folder: Path) -> dict[str, Any]:
    """What the notebook recorded (``{}`` if nothing or unreadable)."""
    path = folder / RESULT_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# nbconvert's "lab" page with the blocks that fetch scripts from CDNs emptied:
# require.js (Bokeh/Panel outputs load without it), MathJax (markdown maths then
# shows as TeX source), Mermaid and the Jupyter widgets manager (neither is used
# by the shipped notebooks). Plots render offline when the notebook loaded its
# Bokeh/Panel JS inline (``hv.extension.inline = True`` or ``pn.extension(inline=True)``
# in its first cell, as the shipped notebooks do).
_OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
"""


def notebook_html(notebook: Path | str) -> str:
    """An executed notebook as one self-contained HTML page that loads nothing from the network.

    Markdown images are embedded; outputs keep whatever they carry (inline
    Bokeh JS when the notebook asked for it).
    """
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    from tradelab.offline_assets import inline_cdn_assets

    exporter = HTMLExporter(extra_loaders=[DictLoader({"offline.html.j2": _OFFLINE_TEMPLATE})],
                            template_file="offline.html.j2", embed_images=True)
    body, _ = exporter.from_filename(str(notebook))
    return inline_cdn_assets(str(body))
