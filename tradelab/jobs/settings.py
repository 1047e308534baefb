"""Job definitions (``config/jobs.toml``) and the ``[jobs]`` section of the main config.

``config/jobs.toml``::

    [defaults]                       # merged into every job
    timezone = "America/New_York"
    calendar = "XNYS"

    [jobs.spx_paper]
    notebook = "notebooks/03_live_job.ipynb"
    cron = "35 16 * * mon-fri"       # 5 fields, or 6 with seconds first
    parameters = { strategy = "sma_cross", symbol = "SPX" }

Missed runs (the scheduler was down, or busy past the fire time) follow
``misfire_grace_time`` and ``coalesce``: a run late by less than the grace
time still happens; several missed runs of one job collapse into one when
``coalesce`` is true; later than the grace time, the run is skipped and the
next regular fire time applies.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tradelab.errors import ConfigError

Overlap = Literal["skip", "queue", "kill"]


class JobsSettings(BaseModel):
    """``[jobs]``: where job definitions and run archives live, and runner defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file: Path = Path("config/jobs.toml")
    runs_dir: Path = Path("runs")
    kernel_name: str = "python3"
    start_timeout: float = Field(default=60.0, gt=0, description="seconds for the kernel to start")
    html: bool = True                # also archive output.html (nbconvert)
    shutdown_grace: float = Field(default=30.0, ge=0,
                                  description="seconds running jobs get to finish on SIGTERM")
    threads: int = Field(default=4, gt=0, description="jobs that may run at the same time")
    scheduler_id: str = "tradelab"


class JobSpec(BaseModel):
    """One scheduled notebook job."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    notebook: Path
    cron: str
    timezone: str = "UTC"
    # An exchange-calendars code (XNYS, XLON, ...); runs on non-sessions are
    # skipped. Empty means every day.
    calendar: str = "XNYS"
    # "day": the fire date must be a trading session; "open": the market must
    # be open at the fire minute.
    sessions: Literal["day", "open"] = "day"
    parameters: dict[str, Any] = Field(default_factory=dict)
    overlap: Overlap = "skip"
    max_runtime: float = Field(default=3600.0, gt=0, description="seconds, then the run is killed")
    cell_timeout: float | None = Field(default=None, gt=0, description="seconds per cell")
    retries: int = Field(default=0, ge=0)
    retry_backoff: float = Field(default=10.0, ge=0, description="first retry wait, seconds")
    misfire_grace_time: int = Field(default=300, gt=0, description="seconds a late run may start")
    coalesce: bool = True
    enabled: bool = True

    @field_validator("cron")
    @classmethod
    def _cron_fields(cls, v: str) -> str:
        if len(v.split()) not in (5, 6):
            raise ValueError("expected 5 fields (min hour day month dow) or 6 (sec first)")
        return v

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v


def jobs_settings(settings: Any) -> JobsSettings:
    """The ``[jobs]`` section of ``settings`` (defaults if the section is not wired yet)."""
    found = getattr(settings, "jobs", None)
    return found if isinstance(found, JobsSettings) else JobsSettings()


def parse_jobs(data: dict[str, Any], origin: str = "jobs.toml") -> dict[str, JobSpec]:
    """Validate a parsed ``jobs.toml`` document.

    Raises
    ------
    ConfigError
        One line per bad field, naming the job and the field.
    """
    unknown = sorted(set(data) - {"defaults", "jobs"})
    problems = [f"{origin}: unknown top-level table [{k}] (expected [defaults] and [jobs.NAME])"
                for k in unknown]
    defaults = data.get("defaults", {})
    specs: dict[str, JobSpec] = {}
    for name, body in (data.get("jobs") or {}).items():
        merged = {**defaults, **body, "name": name}
        if "parameters" in defaults and "parameters" in body:
            merged["parameters"] = {**defaults["parameters"], **body["parameters"]}
        try:
            specs[name] = JobSpec(**merged)
        except ValidationError as exc:
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"])
                problems.append(f"{origin}: jobs.{name}.{field} = {err.get('input')!r}: {err['msg']}")
    if problems:
        raise ConfigError(problems)
    return specs


def load_jobs(path: Path | str) -> dict[str, JobSpec]:
    """Read and validate ``config/jobs.toml`` (a missing file means no jobs)."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    return parse_jobs(data, str(path))
