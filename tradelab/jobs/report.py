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
