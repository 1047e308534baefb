"""Start-up: wall time of a fresh process to the first useful result, per command.

Run: ``.venv/bin/python bench/startup.py [--runs 5] [--cold-runs 1]``.

What is measured
----------------
* Wall time from ``Popen`` to the result, the median of ``--runs`` fresh
  processes (after one unmeasured warm-up run of each, so the OS file cache and
  numba's disk cache are warm):

  - ``python -c "import pandas"``: the yardstick; every other figure is also
    printed as a ratio to it (the machine's speed and load cancel out, roughly);
  - ``tradelab --help``: process exit;
  - ``tradelab backtest sma_cross`` (the bundled sample, default options):
    process exit, warm — ``NUMBA_CACHE_DIR`` as the Makefile sets it
    (``var/numba-cache``) — and cold: a fresh, empty numba cache directory per run
    (``--cold-runs``, 0 to skip: each compiles every kernel, tens of seconds);
  - ``tradelab api``: until ``GET /health`` answers 200 (polled every 20 ms);
  - ``tradelab dashboard``: until it writes its URL on ``--ready-fd`` (it does so
    once the server answers).

  The servers run on a fresh SQLite store (migrated before timing) and are stopped
  after each run.
* For the commands timed to their exit, also the CPU time (user + system) of the
  process, median of the same runs: on a shared machine it varies far less with the
  load than the wall time, so it is the figure to compare two versions by.
* Targets (issue 14), for an idle machine: backtest 3 s, API 3 s, dashboard 5 s,
  and the backtest at most 5x ``import pandas``. The load average is printed
  with the figures: on a busy 2-core machine every figure grows, the ratios less.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tradelab.testing import stop_process  # noqa: E402  (after the sys.path line)

PY = sys.executable
TRADELAB = [PY, "-c", "from tradelab.cli import main; main()"]
_console = Path(PY).parent / "tradelab"
if _console.is_file():
    TRADELAB = [str(_console)]  # the installed entry point, as a user runs it
BOUND = 300.0  # s: a run taking longer is reported as a failure, not waited on


def _env(**extra: str) -> dict[str, str]:
    # PYTHONPATH: the processes import the tree this file is in (a copy of an older
    # commit, for a before/after comparison), not whatever the venv has installed.
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "TRADELAB_HOME": str(ROOT), "PYTHONPATH": path,
            "NUMBA_CACHE_DIR": str(ROOT / "var" / "numba-cache"), **extra}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def to_exit(argv: list[str], env: dict[str, str], cpu: list[float] | None = None) -> float:
    """Seconds from start to a successful exit; the process's CPU seconds go to ``cpu``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True, timeout=BOUND)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall


def _store(tmp: Path) -> str:
    from tradelab.store import Store

    url = f"sqlite:///{tmp / 'startup.db'}"
    store = Store(url)
    store.upgrade()
    store.close()
    return url


def api_ready(tmp: Path) -> float:
    """Seconds from start until ``GET /health`` answers 200."""
    url = _store(tmp)
    port = _free_port()
    env = _env(TRADELAB__AUTH__JWT_SECRET=secrets.token_urlsafe(32),
               TRADELAB__STORE__URL=url, TRADELAB__CACHE__DIR=str(tmp / "cache"))
    t0 = time.perf_counter()
    proc = subprocess.Popen([*TRADELAB, "api", "--host", "127.0.0.1", "--port", str(port),
                             "--no-jobs"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    if r.status == 200:
                        return time.perf_counter() - t0
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"tradelab api exited with {proc.returncode}")
            if time.perf_counter() - t0 > BOUND:
                raise RuntimeError(f"tradelab api: no answer in {BOUND:g} s")
            time.sleep(0.02)  # the poll period: the server has no ready signal
    finally:
        stop_process(proc)


def dashboard_ready(tmp: Path) -> float:
    """Seconds from start until the dashboard writes its URL on ``--ready-fd``."""
    url = _store(tmp)
    env = _env(TRADELAB__AUTH__JWT_SECRET=secrets.token_urlsafe(32),
               TRADELAB__STORE__URL=url, TRADELAB__CACHE__DIR=str(tmp / "cache"))
    read_fd, write_fd = os.pipe()
    t0 = time.perf_counter()
    proc = subprocess.Popen([*TRADELAB, "dashboard", "--host", "127.0.0.1",
                             "--port", str(_free_port()), "--url", url, "--no-jobs",
                             "--ready-fd", str(write_fd)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, pass_fds=(write_fd,))
    os.close(write_fd)  # the server holds the only write end: its exit means end-of-file
    try:
        data = b""
        while not data.endswith(b"\n"):
            if not select.select([read_fd], [], [], BOUND)[0]:
                raise RuntimeError(f"tradelab dashboard: not ready in {BOUND:g} s")
            chunk = os.read(read_fd, 4096)
            if not chunk:
                raise RuntimeError(f"tradelab dashboard exited with {proc.wait(30)}")
            data += chunk
        return time.perf_counter() - t0
    finally:
        os.close(read_fd)
        stop_process(proc)


def median_of(fn: Callable[[], float], runs: int, warmup: bool = True) -> tuple[float, list[float]]:
    if warmup:
        fn()
    times = [fn() for _ in range(runs)]
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cold-runs", type=int, default=1,
                        help="backtests with an empty numba cache (0: skip)")
    args = parser.parse_args()

    env = _env()
    rows: list[tuple[str, float, list[float], float | None, float | None]] = []
    load_before = os.getloadavg()

    def add(name: str, fn: Callable[[], float], target: float | None,
            runs: int = args.runs, warmup: bool = True, cpu: list[float] | None = None) -> None:
        med, times = median_of(fn, runs, warmup)
        # (the warm-up run's CPU time is in cpu too: the last `runs` are the measured ones)
        rows.append((name, med, times, target,
                     statistics.median(cpu[-runs:]) if cpu else None))

    def exit_row(name: str, argv: list[str], target: float | None = None,
                 run_env: Callable[[], dict[str, str]] = lambda: env, runs: int = args.runs,
                 warmup: bool = True) -> None:
        cpu: list[float] = []
        add(name, lambda: to_exit(argv, run_env(), cpu), target, runs, warmup, cpu)

    exit_row("python -c 'import pandas'", [PY, "-c", "import pandas"])
    exit_row("tradelab --help", [*TRADELAB, "--help"])
    exit_row("tradelab backtest sma_cross (warm)", [*TRADELAB, "backtest", "sma_cross"], 3.0)
    if args.cold_runs > 0:
        cold_dirs: list[tempfile.TemporaryDirectory[str]] = []

        def cold_env() -> dict[str, str]:
            cold_dirs.append(tempfile.TemporaryDirectory(prefix="numba-cold-"))
            return _env(NUMBA_CACHE_DIR=cold_dirs[-1].name)

        exit_row("tradelab backtest sma_cross (cold numba)", [*TRADELAB, "backtest", "sma_cross"],
                 None, cold_env, args.cold_runs, False)
        for d in cold_dirs:
            d.cleanup()

    def in_tmp(fn: Callable[[Path], float]) -> Callable[[], float]:
        def run() -> float:
            with tempfile.TemporaryDirectory(prefix="startup-") as d:
                return fn(Path(d))
        return run

    add("tradelab api -> GET /health 200", in_tmp(api_ready), 3.0)
    add("tradelab dashboard -> ready", in_tmp(dashboard_ready), 5.0)
    load_after = os.getloadavg()

    pandas, pandas_cpu = rows[0][1], rows[0][4]
    print(f"start-up, median of {args.runs} fresh processes ({os.cpu_count()} cores, "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after)")
    print(f"  {'':42s} {'median':>8s} {'x pandas':>9s} {'cpu':>7s} {'x pandas':>9s} "
          f"{'target':>7s}   runs")
    for name, med, times, target, cpu in rows:
        tgt = f"{target:.0f} s" if target is not None else ""
        runs = " ".join(f"{t:.2f}" for t in times)
        cpu_cols = (f"{cpu:6.2f}s {cpu / pandas_cpu:8.1f}x" if cpu is not None and pandas_cpu
                    else f"{'':7s} {'':9s}")
        print(f"  {name:42s} {med:7.2f}s {med / pandas:8.1f}x {cpu_cols} {tgt:>7s}   {runs}")
    backtest = rows[2][1]
    print(f"  backtest / import pandas: {backtest / pandas:.1f}x wall"
          + (f", {rows[2][4] / pandas_cpu:.1f}x cpu" if rows[2][4] and pandas_cpu else "")
          + " (target <= 5x)")


if __name__ == "__main__":
    main()
