"""Executor process: ``python -m tradelab.jobs.execute SPEC.json``.

The runner starts this in its own process group and kills the group (and the
kernel, which jupyter_client starts in a session of its own) on timeout or
cancellation, so a hung cell or a wedged kernel can never hang the runner.
The outcome goes to ``status.json``; a missing file means the process was
killed before it could write it.
"""

from __future__ import annotations

import json
import signal
import sys
import traceback
from pathlib import Path
from typing import Any


class Terminated(BaseException):
    """SIGTERM from the runner: unwind so papermill saves the partial output."""


def _on_term(signum: int, _frame: Any) -> None:
    raise Terminated(f"terminated by signal {signal.Signals(signum).name}")


def unknown_parameters(notebook: str | Path, parameters: dict[str, Any]) -> list[str]:
    """Names in ``parameters`` that the notebook's ``parameters`` cell does not define.

    A notebook without a ``parameters`` cell declares no parameters, so every name is
    unknown: papermill would inject it at the top and the notebook would never read
    it, and a job that "succeeded" with a mistyped or ignored parameter is worse than
    one refused.
    """
    import papermill as pm

    known = pm.inspect_notebook(str(notebook))
    return sorted(set(parameters) - set(known))


def execute(spec: dict[str, Any]) -> dict[str, Any]:
    """Run papermill as ``spec`` says and describe the outcome."""
    import papermill as pm

    parameters = spec.get("parameters") or {}
    unknown = unknown_parameters(spec["input"], parameters)
    if unknown:
        known = ", ".join(pm.inspect_notebook(spec["input"])) or "(none)"
        return {"ok": False, "error_type": "UnknownParameter",
                "error": f"unknown parameter(s) {', '.join(unknown)}; the notebook takes: {known}"}
    try:
        pm.execute_notebook(
            spec["input"], spec["output"], parameters=parameters,
            kernel_name=spec.get("kernel_name", "python3"),
            execution_timeout=spec.get("cell_timeout"), start_timeout=spec.get("start_timeout", 60),
            cwd=spec.get("cwd"), progress_bar=False, log_output=False,
        )
    except Terminated as exc:
        return {"ok": False, "error_type": "Terminated", "error": str(exc)}
    except Exception as exc:
        name = type(exc).__name__
        if name == "PapermillExecutionError":
            # The cell's own exception, not papermill's wrapper, is what an operator needs.
            detail = f"{exc.ename}: {exc.evalue} (cell {exc.exec_count})"  # type: ignore[attr-defined]
            return {"ok": False, "error_type": exc.ename, "error": detail}  # type: ignore[attr-defined]
        return {"ok": False, "error_type": name, "error": f"{name}: {exc}",
                "traceback": traceback.format_exc(limit=5)}
    return {"ok": True}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec_path = Path(args[0])
    spec = json.loads(spec_path.read_text())
    signal.signal(signal.SIGTERM, _on_term)
    outcome = execute(spec)
    status = Path(spec["status"])
    tmp = status.with_suffix(".tmp")
    tmp.write_text(json.dumps(outcome, indent=2))
    tmp.replace(status)
    return 0 if outcome["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
