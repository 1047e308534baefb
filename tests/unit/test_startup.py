"""Start-up cost: what a command imports that it does not use (figures: bench/startup.py)."""

from __future__ import annotations

import json
import subprocess
import sys


def _run(code: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_research_does_not_compile_the_iri_grammar_at_import() -> None:
    # vectorbt → plotly → nbformat → jsonschema → rfc3987_syntax (a lark grammar compiled
    # at import, over a second): deferred until a notebook feature uses nbformat.
    got = _run("import sys, json\n"
               "import tradelab.research.simulate, vectorbt\n"
               "before = [m for m in ('jsonschema', 'rfc3987_syntax') if m in sys.modules]\n"
               "import nbformat\n"
               "nb = nbformat.v4.new_notebook()\n"
               "nbformat.validate(nb)\n"
               "import plotly.io._renderers as r\n"
               "print(json.dumps({'before': before, 'version': nbformat.__version__,\n"
               "                  'same': r.nbformat is nbformat,\n"
               "                  'after': 'jsonschema' in sys.modules}))")
    assert got["before"] == []
    # Used, it is the real module, and plotly holds the same one.
    assert got["version"] and got["same"] is True and got["after"] is True


def test_defer_import_is_a_no_op_for_a_module_already_imported() -> None:
    got = _run("import sys, json, colorsys\n"
               "from tradelab._lazy import defer_import\n"
               "defer_import('colorsys'); defer_import('no_such_module_here')\n"
               "import colorsys as again\n"
               "try:\n"
               "    import no_such_module_here\n"
               "    missing = False\n"
               "except ImportError:\n"
               "    missing = True\n"
               "print(json.dumps({'same': again is sys.modules['colorsys'],\n"
               "                  'type': type(again).__name__, 'missing': missing}))")
    assert got == {"same": True, "type": "module", "missing": True}
