"""The papermill job runner: execute a notebook with parameters and record the run.

Each run gets ``<runs_dir>/<job>/<UTC timestamp>-r<run id>/`` holding
``input.ipynb`` (the exact notebook executed, used by replays),
``params.json``, ``output.ipynb`` (+ ``output.html``), ``executor.log`` and,
when the notebook reports one, ``result.json``.

Papermill runs in a child process (:mod:`tradelab.jobs.execute`) in its own
process group. The runner polls it and, on ``max_runtime`` or cancellation,
terminates the group and every process it spawned (the kernel lives in its
own session), so no run can hang and no kernel outlives its run. A kernel that
dies (killed, out of memory) makes the run fail; a run is marked succeeded
only when the executor reported success.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from tenacity import Retrying, retry_if_result, stop_after_attempt, stop_when_event_set
from tenacity import wait_exponential as wait_exp

from tradelab.jobs.report import ENV_RUN_DIR, read_result
from tradelab.jobs.versioning import code_version, strategy_file
from tradelab.monitor.logging import bind_ids
from tradelab.monitor.redact import redact_file, redact_text, register_environment, register_settings
from tradelab.store.jobs_repo import JobRunRecord, JobsRepo

if TYPE_CHECKING:
    from tradelab.store import Store

log = structlog.get_logger("tradelab.jobs")
POLL = 0.1            # seconds between checks of the executor process
TERM_GRACE = 5.0      # seconds between SIGTERM and SIGKILL
RETRYABLE = ("failed", "timed_out")


@dataclass(frozen=True)
class RunRequest:
    """What to run.

    Parameters
    ----------
    job
        Job name (the archive folder and the history key).
    notebook
        The notebook to execute.
    parameters
        Papermill parameters (JSON-able).
    max_runtime
        Wall-clock seconds for one attempt before it is killed (``None``: no limit).
    retries, retry_backoff
        Extra attempts after a failure or timeout, waiting ``retry_backoff * 2**k`` s.
    """

    job: str
    notebook: Path
    parameters: Mapping[str, Any] = field(default_factory=dict)
    trigger: str = "manual"
    max_runtime: float | None = 3600.0
    cell_timeout: float | None = None
    retries: int = 0
    retry_backoff: float = 10.0
    replay_of: int | None = None


@dataclass(frozen=True)
class Attempt:
    """The outcome of one execution attempt."""

    status: str  # succeeded, failed, timed_out or cancelled
    error: str | None = None


class JobRunner:
    """Runs notebooks and records them in the store.

    Parameters
    ----------
    store
        An upgraded :class:`tradelab.store.Store`.
    runs_dir
        Archive root (``runs/``).
    settings
        Resolves strategy source files for the code version (optional).
    notifier
        Receives ``job_succeeded`` / ``job_failed`` (optional).
    metrics
        A :class:`tradelab.monitor.metrics.Metrics` (optional).
    env
        Extra environment for the executor and kernel (e.g. ``TRADELAB__STORE__URL``).
    """

    def __init__(self, store: Store, runs_dir: Path | str, *, settings: Any = None, notifier: Any = None,
                 metrics: Any = None, kernel_name: str = "python3", start_timeout: float = 60.0,
                 html: bool = True, env: Mapping[str, str] | None = None,
                 cwd: Path | str | None = None) -> None:
        self.repo = JobsRepo(store)
        self.runs_dir = Path(runs_dir)
        self.settings, self.notifier, self.metrics = settings, notifier, metrics
        self.kernel_name, self.start_timeout, self.html = kernel_name, start_timeout, html
        self.env = dict(env or {})
        self.cwd = Path(cwd) if cwd is not None else None
        # Kernels inherit this environment: any secret in it that a notebook prints
        # is masked in the run's archive (see _finish).
        register_environment(os.environ)
        register_environment(self.env)
        if settings is not None:
            register_settings(settings)

    # -- public ------------------------------------------------------------------------
    def run(self, req: RunRequest, cancel: threading.Event | None = None,
            on_start: Callable[[int], None] | None = None) -> JobRunRecord:
        """Execute ``req`` (with retries) and return the final run record.

        ``on_start(run_id)`` is called once the run is recorded, before it executes
        (an API trigger answers with the id while the notebook runs).
        """
        cancel = cancel or threading.Event()
        notebook = Path(req.notebook).resolve()
        if not notebook.is_file():
            raise FileNotFoundError(f"notebook {notebook} not found")
        strategy = strategy_file(req.parameters.get("strategy"), self.settings) \
            if self.settings is not None else None
        version = code_version(notebook, strategy)
        started = datetime.now(UTC)
        run_id = self.repo.start_run(
            job=req.job, notebook=str(req.notebook), parameters=dict(req.parameters),
            trigger=req.trigger, code_version=version.code_version,
            notebook_sha256=version.notebook_sha256, strategy_sha256=version.strategy_sha256,
            git_commit=version.git_commit, started_at=started, replay_of=req.replay_of)
        if on_start is not None:
            on_start(run_id)
        folder = self.runs_dir / req.job / f"{started:%Y%m%dT%H%M%SZ}-r{run_id}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(notebook, folder / "input.ipynb")
        (folder / "params.json").write_text(json.dumps(dict(req.parameters), indent=2, default=str))
        output = folder / "output.ipynb"
        self.repo.update_run(run_id, output_path=str(output))
        with bind_ids(job=req.job, job_run_id=run_id):
            log.info("job_started", trigger=req.trigger, notebook=str(req.notebook),
                     code_version=version.code_version)
            attempt, attempts = self._attempts(req, run_id, folder, cancel)
            return self._finish(req, run_id, folder, attempt, attempts, started)

    def replay(self, run_id: int, cancel: threading.Event | None = None,
               max_runtime: float | None = 3600.0) -> JobRunRecord:
        """Run a recorded run again: same archived notebook, same parameters.

        The new run's ``summary["replay"]`` says whether the notebook, strategy
        source and data fingerprint match the original's.
        """
        original = self.repo.get_run(run_id)
        if original is None:
            raise KeyError(f"unknown job run id {run_id}")
        archived = Path(original.output_path).parent / "input.ipynb" if original.output_path else None
        notebook = archived if archived is not None and archived.is_file() else Path(original.notebook)
        record = self.run(RunRequest(original.job, notebook, original.parameters, "replay",
                                     max_runtime=max_runtime, replay_of=run_id), cancel)
        check = {"of": run_id,
                 "notebook_matches": record.notebook_sha256 == original.notebook_sha256,
                 "strategy_matches": record.strategy_sha256 == original.strategy_sha256,
                 "data_matches": (record.data_fingerprint == original.data_fingerprint
                                  if original.data_fingerprint else None)}
        self.repo.update_run(record.id, summary={**(record.summary or {}), "replay": check})
        found = self.repo.get_run(record.id)
        assert found is not None
        return found

    # -- attempts ----------------------------------------------------------------------
    def _attempts(self, req: RunRequest, run_id: int, folder: Path,
                  cancel: threading.Event) -> tuple[Attempt, int]:
        count = 0
        last = Attempt("failed", "not started")

        def pause(seconds: float) -> None:
            cancel.wait(seconds)  # the backoff ends early when the run is cancelled

        retrying = Retrying(
            stop=stop_after_attempt(req.retries + 1) | stop_when_event_set(cancel),
            wait=wait_exp(multiplier=req.retry_backoff, max=max(req.retry_backoff * 8, 1)),
            retry=retry_if_result(lambda a: a.status in RETRYABLE and not cancel.is_set()),
            # Out of attempts: end the loop and keep the last outcome (no RetryError).
            sleep=pause, retry_error_callback=lambda _state: None)
        for attempt in retrying:
            with attempt:
                count += 1
                if count > 1:
                    log.warning("job_retry", attempt=count, previous=last.status, error=last.error)
                    previous = folder / "output.ipynb"
                    if previous.exists():
                        previous.replace(folder / f"output.attempt-{count - 1}.ipynb")
                self.repo.update_run(run_id, attempts=count)
                last = self._execute(req, run_id, folder, cancel)
            if not attempt.retry_state.outcome.failed:  # type: ignore[union-attr]
                attempt.retry_state.set_result(last)
        return last, count

    def _execute(self, req: RunRequest, run_id: int, folder: Path, cancel: threading.Event) -> Attempt:
        status_file = folder / "status.json"
        status_file.unlink(missing_ok=True)
        spec = {"input": str(folder / "input.ipynb"), "output": str(folder / "output.ipynb"),
                "parameters": dict(req.parameters), "kernel_name": self.kernel_name,
                "cell_timeout": req.cell_timeout, "start_timeout": self.start_timeout,
                "cwd": str(self.cwd or Path(req.notebook).resolve().parent),
                "status": str(status_file)}
        spec_file = folder / "executor.json"
        spec_file.write_text(json.dumps(spec, default=str, indent=2))
        env = {**os.environ, **self.env, ENV_RUN_DIR: str(folder), "TRADELAB_JOB": req.job,
               "TRADELAB_JOB_RUN_ID": str(run_id), "PYTHONUNBUFFERED": "1"}
        with (folder / "executor.log").open("ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "tradelab.jobs.execute", str(spec_file)],
                                    stdout=out, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
            return self._watch(proc, status_file, req.max_runtime, cancel)

    def _watch(self, proc: subprocess.Popen[bytes], status_file: Path, max_runtime: float | None,
               cancel: threading.Event) -> Attempt:
        t0 = time.monotonic()
        family: dict[int, float] = {}
        reason: Attempt | None = None
        while proc.poll() is None:
            _remember_descendants(proc.pid, family)
            if cancel.is_set():
                reason = Attempt("cancelled", "cancelled")
            elif max_runtime is not None and time.monotonic() - t0 > max_runtime:
                reason = Attempt("timed_out", f"timed out after {max_runtime:g}s")
            if reason is not None:
                _terminate(proc, family)
                break
            cancel.wait(POLL)
        _kill_leftovers(family)  # the kernel, if the executor died without shutting it down
        if reason is not None:
            return reason
        outcome = _read_json(status_file)
        if proc.returncode == 0 and outcome.get("ok") is True:
            return Attempt("succeeded")
        if outcome:
            return Attempt("failed", redact_text(str(outcome.get("error") or "executor failed")))
        code = proc.returncode
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        return Attempt("failed", f"executor died ({how}) before reporting")

    # -- completion --------------------------------------------------------------------
    def _finish(self, req: RunRequest, run_id: int, folder: Path, attempt: Attempt, attempts: int,
                started: datetime) -> JobRunRecord:
        output = folder / "output.ipynb"
        summary: dict[str, Any] = {}
        # The archive is kept and served: mask secrets a notebook printed before it is
        # rendered to HTML (secrets are registered in their JSON-escaped form too).
        for name in ("executor.log", "output.ipynb", "result.json"):
            redact_file(folder / name)
        if self.html and output.is_file():
            html = _to_html(output)
            if html is not None:
                summary["html_path"] = str(html)
        result = read_result(folder)
        if isinstance(result.get("summary"), dict):
            summary.update(result["summary"])
        for key in ("engine_run_id", "bars"):
            if key in result:
                summary[key] = result[key]
        finished = datetime.now(UTC)
        self.repo.finish_run(run_id, attempt.status, finished_at=finished, error=attempt.error,
                             attempts=attempts, data_fingerprint=result.get("data_fingerprint"),
                             output_path=str(output) if output.is_file() else None,
                             summary=summary or None)
        record = self.repo.get_run(run_id)
        assert record is not None
        seconds = record.duration
        log.info("job_finished", status=attempt.status, attempts=attempts, seconds=seconds,
                 error=attempt.error)
        if self.metrics is not None:
            self.metrics.job_finished(req.job, attempt.status, seconds)
        if self.notifier is not None:
            ok = attempt.status == "succeeded"
            ctx = {"job": req.job, "run_id": run_id, "status": attempt.status, "error": attempt.error,
                   "attempts": attempts, "duration": seconds, "notebook": str(req.notebook),
                   "output_path": record.output_path, "parameters": dict(req.parameters),
                   "summary": record.summary or {}}
            self.notifier.notify("job_succeeded" if ok else "job_failed", ctx,
                                 severity=None if ok or attempt.status != "cancelled" else "warning",
                                 reference=f"job_run:{run_id}")
        return record


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember_descendants(pid: int, family: dict[int, float]) -> None:
    # Kept up to date while the executor runs: once it dies its children are
    # re-parented and can no longer be found from its pid.
    import psutil

    try:
        for child in psutil.Process(pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                family.setdefault(child.pid, child.create_time())
    except psutil.Error:
        pass


def _terminate(proc: subprocess.Popen[bytes], family: dict[int, float]) -> None:
    """SIGTERM the executor's group (papermill saves partial output), then SIGKILL everything."""
    _remember_descendants(proc.pid, family)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=TERM_GRACE)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=TERM_GRACE)


def _kill_leftovers(family: dict[int, float]) -> None:
    import psutil

    for pid, created in family.items():
        try:
            p = psutil.Process(pid)
            if abs(p.create_time() - created) < 1e-3:  # same process, not a recycled pid
                p.kill()
                p.wait(timeout=TERM_GRACE)
        except (psutil.Error, TimeoutError):
            continue


def _to_html(notebook: Path) -> Path | None:
    try:
        from tradelab.jobs.report import notebook_html  # the offline page: no CDN scripts

        body = notebook_html(notebook)
    except Exception as exc:  # a broken partial output still leaves the .ipynb
        log.warning("html_export_failed", error=redact_text(f"{type(exc).__name__}: {exc}"))
        return None
    path = notebook.with_suffix(".html")
    path.write_text(body, encoding="utf-8")
    return path
