"""``tradelab run``, ``tradelab schedule`` and ``tradelab jobs list|history|trigger|replay``."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import typer

from tradelab.cli._app import app, emit_json, fail, settings
from tradelab.errors import ConfigError

jobs_app = typer.Typer(help="Scheduled notebook jobs: definitions, history, manual runs, replays.",
                       no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
DB_HELP = "store URL (default: [store] url)"
FINAL = {"succeeded": 0, "skipped": 0}


def _service(db: str | None, jobs_file: Path | None = None) -> Any:
    from tradelab.app.services import build_jobs

    try:
        return build_jobs(settings(), db, jobs_file)
    except ConfigError as exc:
        for line in exc.problems:
            typer.echo(f"config error: {line}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:
        from tradelab.monitor.redact import redact_text

        fail(redact_text(f"{type(exc).__name__}: {exc}"))


def _parse_parameters(args: list[str]) -> dict[str, Any]:
    from tradelab.jobs.service import parse_value

    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        if args[i] not in ("-p", "--parameter"):
            fail(f"unexpected argument {args[i]!r}; parameters are given as -p NAME VALUE")
        if i + 2 >= len(args):
            fail(f"{args[i]} needs NAME VALUE")
        out[args[i + 1]] = parse_value(args[i + 2])
        i += 3
    return out


def _cancel_on_signals(cancel: threading.Event) -> None:
    def handler(signum: int, _frame: Any) -> None:
        typer.echo(f"{signal.Signals(signum).name}: cancelling the run...", err=True)
        cancel.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)


def _report(record: Any) -> None:
    typer.echo(f"run {record.id} {record.job}: {record.status} after {record.attempts} attempt(s)"
               + (f" in {record.duration:.1f}s" if record.duration is not None else ""))
    typer.echo(f"  code {record.code_version}; data {record.data_fingerprint or '(not reported)'}")
    if record.output_path:
        typer.echo(f"  output {record.output_path}")
    if record.error:
        typer.echo(f"  error: {record.error}")


def _exit_for(record: Any) -> None:
    code = FINAL.get(record.status, 1)
    if code:
        raise typer.Exit(code)


@app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    notebook: Path = typer.Argument(..., help="notebook to execute with papermill"),
    job: str = typer.Option(None, help="job name (default: the notebook's file name)"),
    timeout: float = typer.Option(3600.0, help="max runtime in seconds (then the run is killed)"),
    cell_timeout: float = typer.Option(None, help="max seconds per cell"),
    retries: int = typer.Option(0, help="extra attempts after a failure"),
    backoff: float = typer.Option(10.0, help="first retry wait in seconds (doubles)"),
    db: str = typer.Option(None, help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="print the run record as JSON"),
) -> None:
    """Execute NOTEBOOK (-p NAME VALUE ...) and record the run; exit 1 unless it succeeded."""
    from tradelab.jobs.runner import RunRequest

    params = _parse_parameters(list(ctx.args))
    if not notebook.is_file():
        fail(f"notebook {notebook} not found")
    svc = _service(db)
    cancel = threading.Event()
    _cancel_on_signals(cancel)
    try:
        record = svc.runner.run(RunRequest(job or notebook.stem, notebook, params, "manual", timeout,
                                           cell_timeout, retries, backoff), cancel)
    finally:
        svc.close()
    emit_json(_as_dict(record)) if as_json else _report(record)
    _exit_for(record)


@app.command("schedule")
def schedule(
    jobs_file: Path = typer.Option(None, "--jobs", help="job definitions (default: [jobs] file)"),
    db: str = typer.Option(None, help=DB_HELP),
) -> None:
    """Run the configured jobs on their schedules until SIGTERM or Ctrl-C."""
    from tradelab.app.services import build_scheduler
    from tradelab.monitor import HealthChecks, database_check, start_monitoring

    svc = _service(db, jobs_file)
    if not svc.specs:
        svc.close()
        fail(f"no jobs defined in {svc.settings.path(jobs_file or svc.config.file)}")
    sched = build_scheduler(svc, scheduler_id=svc.config.scheduler_id, threads=svc.config.threads)
    checks = HealthChecks()
    checks.add("database", database_check(svc.store))
    checks.add("scheduler", lambda: (sched.scheduler.running, "running"))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: stop.set())
    sched.start()
    # After start: the first round of checks must see a running scheduler.
    mon = start_monitoring(svc.settings, checks, svc.metrics, svc.notifier, component="scheduler")
    for name, when in sorted(sched.next_fire_times().items()):
        typer.echo(f"{name}: next run {when:%Y-%m-%d %H:%M:%S %Z}" if when else f"{name}: no next run")
    if mon.server is not None:
        typer.echo(f"monitoring on {mon.server.url}/metrics")
    stop.wait()
    typer.echo(f"stopping: waiting up to {svc.config.shutdown_grace:g}s for running jobs", err=True)
    sched.shutdown(svc.config.shutdown_grace)
    mon.close()
    svc.close()


@jobs_app.command("list")
def list_(jobs_file: Path = typer.Option(None, "--jobs"), db: str = typer.Option(None, help=DB_HELP),
          as_json: bool = typer.Option(False, "--json")) -> None:
    """Configured jobs with their schedule and next fire time."""
    from datetime import UTC, datetime

    from tradelab.jobs.scheduler import build_trigger

    svc = _service(db, jobs_file)
    now = datetime.now(UTC)
    rows = []
    for name, spec in sorted(svc.specs.items()):
        upcoming = build_trigger(spec).next_fire_times(1, now) if spec.enabled else []
        last = svc.runner.repo.runs(name, limit=1)
        rows.append({"job": name, "notebook": str(spec.notebook), "cron": spec.cron,
                     "timezone": spec.timezone, "calendar": spec.calendar or None,
                     "overlap": spec.overlap, "enabled": spec.enabled,
                     "next_run": upcoming[0] if upcoming else None,
                     "last_status": last[0].status if last else None})
    svc.close()
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        nxt = f"{r['next_run']:%Y-%m-%d %H:%M %Z}" if r["next_run"] else "-"
        typer.echo(f"{r['job']:24} {r['cron']:20} {r['timezone']:18} {r['calendar'] or '-':6} "
                   f"{r['overlap']:5} next {nxt:24} last {r['last_status'] or '-'}")


@jobs_app.command("history")
def history(job: str = typer.Argument(None, help="only this job"),
            limit: int = typer.Option(20, help="newest N runs"),
            db: str = typer.Option(None, help=DB_HELP),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Recorded runs, newest first."""
    svc = _service(db)
    runs = svc.runner.repo.runs(job, limit=limit)
    svc.close()
    if as_json:
        emit_json([_as_dict(r) for r in runs])
        return
    if not runs:
        typer.echo(f"no recorded runs{f' of job {job}' if job else ''}")
        return
    typer.echo(f"{'ID':>5} {'STARTED (UTC)':19} {'JOB':24} {'TRIGGER':8} {'STATUS':10} {'TOOK':>8} "
               f"{'RETURN':>8} {'FILLS':>5}  ERROR")
    for r in runs:
        took = f"{r.duration:7.1f}s" if r.duration is not None else "       -"
        ret, fills = _outcome(r.summary)
        typer.echo(f"{r.id:5} {r.started_at:%Y-%m-%d %H:%M:%S} {r.job:24} {r.trigger:8} {r.status:10} "
                   f"{took} {ret:>8} {fills:>5}  {(r.error or '')[:60]}")


def _outcome(summary: dict[str, Any] | None) -> tuple[str, str]:
    """The run's result as its notebook reported it: total return and fills ("-" if none)."""
    s = summary or {}
    ret = s.get("total_return")
    return (f"{ret:+.2%}" if isinstance(ret, int | float) else "-",
            str(s["fills"]) if isinstance(s.get("fills"), int) else "-")


#: Result figures a replay must reproduce (what the job notebook reports).
RESULT_KEYS = ("equity", "total_return", "fills", "risk_alerts", "bars")


@jobs_app.command("trigger")
def trigger(name: str = typer.Argument(..., help="configured job name"),
            jobs_file: Path = typer.Option(None, "--jobs"),
            db: str = typer.Option(None, help=DB_HELP)) -> None:
    """Run a configured job now (in this process), with its parameters, limits and retries."""
    from datetime import UTC, datetime, timedelta

    svc = _service(db, jobs_file)
    if name not in svc.specs:
        svc.close()
        fail(f"unknown job {name!r}; configured: {', '.join(sorted(svc.specs)) or '(none)'}")
    spec = svc.specs[name]
    # Another process (the scheduler) may be running it: honour overlap=skip across processes.
    recent = datetime.now(UTC) - timedelta(seconds=spec.max_runtime * (spec.retries + 1) + 60)
    busy = [r for r in svc.runner.repo.runs(name, limit=20)
            if r.status == "running" and r.started_at > recent]
    if busy and spec.overlap == "skip":
        svc.close()
        fail(f"job {name} is already running (run {busy[0].id}) and its overlap policy is skip", 1)
    from tradelab.app.services import build_scheduler

    sched = build_scheduler(svc)
    cancel_all = threading.Event()
    _cancel_on_signals(cancel_all)
    try:
        req = sched.request(name, "manual")
        record = svc.runner.run(req, cancel_all)
    finally:
        svc.close()
    _report(record)
    _exit_for(record)


@jobs_app.command("replay")
def replay(run_id: int = typer.Argument(..., help="a recorded run id"),
           timeout: float = typer.Option(3600.0, help="max runtime in seconds"),
           db: str = typer.Option(None, help=DB_HELP)) -> None:
    """Re-run a recorded run: same archived notebook, same parameters; check the data matches."""
    svc = _service(db)
    cancel = threading.Event()
    _cancel_on_signals(cancel)
    try:
        record = svc.runner.replay(run_id, cancel, max_runtime=timeout)
    except KeyError as exc:
        svc.close()
        fail(str(exc.args[0]))
    svc.close()
    _report(record)
    check = (record.summary or {}).get("replay", {})
    typer.echo(f"  replay of {run_id}: notebook {'same' if check.get('notebook_matches') else 'DIFFERENT'}, "
               f"strategy {'same' if check.get('strategy_matches') else 'DIFFERENT'}, data "
               + {True: "same", False: "DIFFERENT", None: "not fingerprinted"}[check.get("data_matches")])
    results_differ = _compare_results(db, run_id, record)
    _exit_for(record)
    if check.get("data_matches") is False or not check.get("notebook_matches") or results_differ:
        raise typer.Exit(1)


def _compare_results(db: str | None, run_id: int, record: Any) -> bool:
    """Print the original's result next to the replay's; True when a figure differs."""
    svc = _service(db)
    try:
        original = svc.runner.repo.get_run(run_id)
    finally:
        svc.close()
    before, after = (original.summary or {}) if original else {}, record.summary or {}
    keys = [k for k in RESULT_KEYS if k in before or k in after]
    if not keys:
        typer.echo("  results: none reported by the notebook (nothing to compare)")
        return False
    differ = [k for k in keys if before.get(k) != after.get(k)]
    typer.echo(f"  results {'DIFFER' if differ else 'same'}: " + ", ".join(
        f"{k} {before.get(k)} -> {after.get(k)}" if k in differ else f"{k} {after.get(k)}" for k in keys))
    return bool(differ)


def _as_dict(record: Any) -> dict[str, Any]:
    from dataclasses import asdict

    d = asdict(record)
    d["duration"] = record.duration
    return d
