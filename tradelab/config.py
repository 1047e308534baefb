"""Typed, frozen settings: ``config/*.toml`` merged with ``TRADELAB__SECTION__KEY``.

There is no global settings object. :func:`load_config` builds a new frozen
:class:`Settings` each call from explicit files and an explicit ``environ``
mapping, so tests and notebooks control exactly what is read.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.exceptions import SettingsError

from tradelab.auth.settings import ApiSettings, AuthSettings
from tradelab.errors import ConfigError
from tradelab.jobs.settings import JobsSettings
from tradelab.monitor.settings import MonitorSettings
from tradelab.notify.settings import NotifySettings
from tradelab.risk_settings import RiskLimitSettings as RiskLimitSettings  # re-exported
from tradelab.risk_settings import RiskSettings

ENV_PREFIX = "TRADELAB__"
CONFIG_FILE = "config/tradelab.toml"
ValidationPolicy = Literal["raise", "drop", "fill"]
Adjust = Literal["raw", "adjusted"]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FileSourceSettings(_Section):
    """CSV/Parquet files, one per symbol: ``<root>/<symbol>.csv`` or ``.parquet``."""

    root: Path = Path("data")
    adjust: Adjust = "raw"


class YFinanceSettings(_Section):
    """Yahoo Finance through the ``yfinance`` client."""

    adjust: Adjust = "adjusted"
    timeout: float = Field(default=30.0, gt=0)


class CcxtSettings(_Section):
    """A ccxt exchange for OHLCV; keys are optional for public market data."""

    exchange: str = "binance"
    api_key: SecretStr | None = None
    secret: SecretStr | None = None
    timeout_ms: int = Field(default=30_000, gt=0)
    page_limit: int = Field(default=1000, gt=0)
    base_url: str | None = Field(default=None, description=(
        "REST host for market data instead of the exchange's (a testnet, `tradelab venue-sim`)"))
    ws_url: str | None = Field(default=None, description="websocket host for --feed ccxt likewise")


class QualitySettings(_Section):
    """Data-quality gate (``[data.quality]``): a run refuses to start, or halts, on a breach.

    Every threshold is optional; an unset one is not checked. See
    :mod:`tradelab.data.quality`.
    """

    max_rejected: int | None = Field(default=None, ge=0, description=(
        "rows dropped at load plus feed messages rejected, per run"))
    max_rejected_fraction: float | None = Field(default=None, gt=0, lt=1, description=(
        "rejected as a fraction of rows/messages seen"))
    max_rejected_by_reason: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict, description="reason (e.g. not_json, high_low) -> limit")
    max_gaps: int | None = Field(default=None, ge=0, description="gaps in the bars, per run")
    max_stale_seconds: float | None = Field(default=None, gt=0, description=(
        "seconds a live feed may go without a fresh bar"))
    min_bars: int | None = Field(default=None, gt=0, description="bars the run starts from")
    action: Literal["halt", "warn"] = "halt"


class DataSettings(_Section):
    """Where bars come from and what happens to bars that break the contract."""

    default_source: str = "sample"
    default_symbol: str = "SPX"
    policy: ValidationPolicy = "raise"
    # Per-source overrides of ``policy``, e.g. {"yfinance": "fill"}.
    policies: dict[str, ValidationPolicy] = Field(default_factory=dict)
    # A gap is reported when consecutive bars are further apart than this many
    # typical intervals (weekends and holidays in daily data stay below it).
    gap_factor: float = Field(default=5.0, gt=1)
    file: FileSourceSettings = FileSourceSettings()
    yfinance: YFinanceSettings = YFinanceSettings()
    ccxt: CcxtSettings = CcxtSettings()
    quality: QualitySettings = QualitySettings()

    def policy_for(self, source: str) -> ValidationPolicy:
        return self.policies.get(source, self.policy)


class FeedSettings(_Section):
    """Live feeds for ``tradelab paper --feed`` (websocket, ccxt, polling).

    See :mod:`tradelab.feeds`; unset ``stale_after`` uses each feed's default.
    """

    poll_seconds: float = Field(default=60.0, gt=0, description="seconds between polls")
    stale_after: float | None = Field(default=None, gt=0, description=(
        "seconds without a message (websocket) or a new bar (polling) before stale"))
    backoff_base: float = Field(default=0.5, gt=0, description="first reconnect delay (s)")
    backoff_max: float = Field(default=30.0, gt=0, description="longest reconnect delay (s)")
    max_retries: int = Field(default=10, ge=0, description="consecutive failures before giving up")
    ccxt_mode: Literal["auto", "websocket", "rest"] = "auto"
    ccxt_interval: str = "1m"
    interval: str = Field(default="1d", description=(
        "bar interval of ws/poll feeds and their backfill (ticks: the bars built)"))
    ticks: bool = Field(default=False, description=(
        "ws: build bars from ticks; ccxt: from the exchange's trades"))
    grace: float = Field(default=0.0, ge=0, description="seconds a bar accepts late ticks")
    stamp_cutoff: float = Field(default=5.0, gt=0, description=(
        "portfolio on a live feed: seconds after a time stamp's first bar before it is "
        "complete without the missing symbols (tradelab.feeds.stamps)"))


class CacheSettings(_Section):
    """L1 memory → L2 diskcache (→ L3 Redis when configured)."""

    enabled: bool = True
    dir: Path = Path("var/cache")
    memory_ttl: float = Field(default=600.0, gt=0, description="seconds")
    memory_max_items: int = Field(default=64, gt=0)
    disk_ttl: float = Field(default=7 * 24 * 3600.0, gt=0, description="seconds")
    disk_size_limit: int = Field(default=2**30, gt=0, description="bytes")
    # L3, shared by processes and machines; off unless set. A password in the URL
    # belongs in the environment: TRADELAB__CACHE__REDIS_URL=redis://:pw@host:6379/0
    redis_url: str | None = None
    redis_ttl: float = Field(default=7 * 24 * 3600.0, gt=0, description="seconds")
    redis_prefix: str = "tradelab:"


class ResearchSettings(_Section):
    """Default execution conventions for backtests and sweeps (see README)."""

    cash: float = Field(default=100_000.0, gt=0)
    fees: float = Field(default=0.0005, ge=0, lt=1, description="fraction of notional")
    fixed_fees: float = Field(default=0.0, ge=0, description="per order, in cash")
    slippage: float = Field(default=0.0, ge=0, lt=1, description="fraction of price")
    size: float = Field(default=1.0, gt=0)
    size_type: Literal["amount", "value", "percent"] = "percent"
    fill: Literal["next_open", "close"] = "next_open"
    fractional: bool = False
    periods_per_year: int | None = Field(default=None, gt=0)
    # 250: the 10k SMA sweep's peak RSS is ~1/3 lower than with 500, at the same speed.
    sweep_chunk_size: int = Field(default=250, gt=0, description="columns per vectorbt call")
    reports_dir: Path = Path("var/reports")


class StrategySettings(_Section):
    """Where strategy plug-ins are discovered."""

    paths: tuple[Path, ...] = (Path("strategies"),)
    entry_points: bool = True


class EngineSettings(_Section):
    """The paper/live event loop (mirrors :class:`tradelab.engine.loop.EngineConfig`)."""

    account: str = "paper"
    broker: str = Field(default="paper", description=(
        "the venue orders go to, by name (tradelab.app.brokers; 'paper' is the simulator)"))
    lease_seconds: float = Field(default=30.0, gt=0, description=(
        "a run's lease in the store: a second engine on the run is refused until it expires"))
    flush_every: int = Field(default=500, gt=0, description="bars between routine store commits")
    flush_seconds: float = Field(default=0.5, ge=0, description=(
        "wall-clock seconds between routine commits (whichever of the two comes first)"))
    cancel_on_stop: bool = False
    signal_mode: Literal["window", "precomputed"] = "window"
    kill_poll_every: int = Field(default=1, gt=0)
    kill_poll_seconds: float = Field(default=0.25, ge=0, description=(
        "wall-clock seconds between kill-switch polls; orders always re-read it"))
    retry_attempts: int = Field(default=5, gt=0)
    retry_max_wait: float = Field(default=2.0, gt=0)
    volume_fraction: float | None = Field(default=None, gt=0, le=1)
    shared_account: bool = Field(default=False, description=(
        "several engines trade this account: gross exposure, daily loss, drawdown and the "
        "kill switch are judged on the whole account in the store, under its lock"))


class LiveSettings(_Section):
    """Trading with real money through a live broker (``tradelab live``).

    Off unless ``enabled = true``; the command also wants ``--confirm``. Venue
    credentials come only from the environment (``TRADELAB_CCXT_API_KEY`` /
    ``TRADELAB_CCXT_SECRET``, ``TRADELAB_ALPACA_API_KEY`` / ``TRADELAB_ALPACA_SECRET``).
    """

    enabled: bool = Field(default=False, description="allow `tradelab live` to send real orders")
    sandbox: bool = Field(default=True, description=(
        "trade the venue's sandbox (Binance spot testnet, Alpaca paper API); false = real money"))
    exchange: str = Field(default="binance", description="the ccxt exchange id of --broker ccxt")
    base_url: str | None = Field(default=None, description=(
        "the venue's REST base URL (a testnet, a paper API, or `tradelab venue-sim`)"))
    ws_url: str | None = Field(default=None, description="the venue's websocket base URL")
    quote: str = Field(default="USDT", description="the account currency at a crypto venue")
    reconcile_seconds: float = Field(default=60.0, gt=0, description=(
        "seconds between reconciliations with the venue while running"))
    request_timeout: float = Field(default=10.0, gt=0, description="seconds per venue request")
    drift_threshold: float = Field(default=0.01, ge=0, description=(
        "live-vs-research drift (fraction of starting equity) above which "
        "`tradelab parity --run` alerts through notifications"))


class StoreSettings(_Section):
    """The paper/live database; a relative SQLite path hangs off ``home``."""

    url: str = "sqlite:///var/tradelab.db"
    busy_timeout_ms: int = Field(default=30_000, gt=0, description=(
        "SQLite: how long a write waits for another writer's lock; past it the run halts"))


class DashboardSettings(_Section):
    """The live dashboard (``tradelab dashboard``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=5006, ge=0, le=65535)
    poll_ms: int = Field(default=300, ge=50, le=5000, description="store poll period (ms)")
    account: str | None = None  # default: [engine] account
    # Signs the browser's login cookie; from TRADELAB__DASHBOARD__COOKIE_SECRET (32+ bytes).
    # Unset: random per server start (logins then don't survive a restart).
    cookie_secret: SecretStr | None = None
    # Seconds a login with no open page is kept (default and cap: [auth] refresh_ttl).
    session_idle: float | None = Field(default=None, gt=0, description="seconds")


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_logs: bool = False


class Settings(BaseSettings):
    """The whole configuration. Frozen; build a new one with :func:`load_config`."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
    )

    home: Path = Field(default_factory=Path.cwd, description="project root; relative paths hang off it")
    data: DataSettings = DataSettings()
    cache: CacheSettings = CacheSettings()
    research: ResearchSettings = ResearchSettings()
    strategies: StrategySettings = StrategySettings()
    engine: EngineSettings = EngineSettings()
    live: LiveSettings = LiveSettings()
    risk: RiskSettings = RiskSettings()
    store: StoreSettings = StoreSettings()
    logging: LoggingSettings = LoggingSettings()
    auth: AuthSettings = AuthSettings()
    api: ApiSettings = ApiSettings()
    dashboard: DashboardSettings = DashboardSettings()
    notify: NotifySettings = NotifySettings()
    jobs: JobsSettings = JobsSettings()
    monitor: MonitorSettings = MonitorSettings()
    feeds: FeedSettings = FeedSettings()

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource, *_: Any, **__: Any
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only explicit values: load_config() has already merged files and environ,
        # so nothing here may read os.environ behind the caller's back.
        return (init_settings,)

    def path(self, p: Path | str) -> Path:
        """Resolve a configured path against :attr:`home`."""
        p = Path(p).expanduser()
        return p if p.is_absolute() else (self.home / p)

    def redacted(self) -> dict[str, Any]:
        """The effective configuration as plain data with every secret masked."""
        return _redact(self.model_dump(mode="json"), self)


class _EnvironSource(EnvSettingsSource):
    """pydantic-settings' env parsing (nesting, JSON values) over a given mapping."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._environ.items()}

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        """JSON, or for a list-valued field also ``a,b,c`` (``["a", "b"]`` keeps working)."""
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError:
            if isinstance(value, str) and _is_list_field(field):
                return [part.strip() for part in value.split(",") if part.strip()]
            raise


_LIST_TYPES = (list, tuple, set, frozenset, Sequence, AbstractSet)


def _is_list_field(field: FieldInfo | None) -> bool:
    """Whether a field holds a list, tuple or set (possibly optional)."""
    if field is None:
        return False
    kinds = [field.annotation]
    while kinds:
        kind = kinds.pop()
        origin = get_origin(kind)
        if kind in _LIST_TYPES or origin in _LIST_TYPES:
            return True
        if origin in (Union, UnionType):
            kinds.extend(get_args(kind))
    return False


SECRET_WORDS = ("secret", "password", "token", "api_key", "apikey", "passphrase", "private")


def is_secret_name(name: str) -> bool:
    """Whether a field or variable name denotes a secret (its value is never shown)."""
    lowered = name.lower()
    return any(w in lowered for w in SECRET_WORDS)


def _redact(data: Any, model: Any = None, key: str = "") -> Any:
    if isinstance(data, dict):
        return {k: _redact(v, None, k) for k, v in data.items()}
    if isinstance(data, list):
        return [_redact(v, None, key) for v in data]
    if isinstance(data, str) and is_secret_name(key):
        # Secrets are strings (SecretStr already dumps masked); a secret-sounding
        # number such as ``api_key_ttl_days`` or ``password_min_length`` is a setting.
        return "**********"
    if key.endswith("url") and isinstance(data, str) and "://" in data:
        # A database URL may embed a password; the store parses URLs (only it imports sqlalchemy).
        from tradelab.store import mask_url

        return mask_url(data)
    return data


def find_home(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` holding ``config/tradelab.toml``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    return here


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any], origin: dict[str, str],
                label: str, prefix: str = "") -> dict[str, Any]:
    for key, value in over.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            base[key] = _deep_merge(base[key], value, origin, label, path + ".")
        else:
            base[key] = dict(value) if isinstance(value, Mapping) else value
            origin[path] = label
    return base


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None


def load_config(
    paths: Sequence[Path | str] | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | str | None = None,
) -> Settings:
    """Build settings from TOML files and environment overrides.

    Parameters
    ----------
    paths
        TOML files merged in order (later wins). Default: ``$TRADELAB_CONFIG``
        (``:``-separated) if set, else ``<home>/config/tradelab.toml`` when it exists.
    environ
        The environment to read ``TRADELAB__SECTION__KEY`` overrides from
        (default ``os.environ``). Overrides beat files.
    home
        Project root for relative paths. Default: ``$TRADELAB_HOME`` or the nearest
        folder above the working directory that holds ``config/tradelab.toml``.

    Raises
    ------
    ConfigError
        With one line per bad field: its dotted path, the value, where it came
        from and what was expected.
    """
    env = dict(os.environ if environ is None else environ)
    root = Path(home or env.get("TRADELAB_HOME") or find_home()).expanduser().resolve()
    if paths is None:
        listed = env.get("TRADELAB_CONFIG")
        if listed:
            paths = [p for p in listed.split(os.pathsep) if p]
        else:
            default = root / CONFIG_FILE
            paths = [default] if default.is_file() else []
    merged: dict[str, Any] = {"home": str(root)}
    origin: dict[str, str] = {}
    for p in paths:
        file = Path(p) if Path(p).is_absolute() else root / p
        _deep_merge(merged, _read_toml(file), origin, str(file))
    try:
        env_values = _EnvironSource(Settings, env)()
    except SettingsError as exc:  # a complex value that is not JSON: one line, no traceback
        raise ConfigError([_describe_env_error(exc, env)]) from None
    _deep_merge(merged, env_values, origin, "environment")
    try:
        return Settings(**merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin)) from None


def _describe_env_error(exc: SettingsError, env: Mapping[str, str]) -> str:
    section = str(exc).split('"')[1] if str(exc).count('"') >= 2 else ""
    names = sorted(k for k in env if k.upper().startswith(f"{ENV_PREFIX}{section.upper()}__"))
    shown = ", ".join(f"{k}={'**********' if is_secret_name(k) else repr(env[k])}" for k in names)
    cause = exc.__cause__ or exc
    return (f"{section}: {shown or 'an environment override'}: not valid JSON "
            f"(lists may also be comma-separated): {cause}")


def _is_secret_setting(loc: Sequence[int | str]) -> bool:
    """Whether the setting at ``loc`` holds a secret: a ``SecretStr`` field, or (where the
    model cannot say) a secret-sounding name."""
    annotation: Any = Settings
    for part in loc:
        options = (annotation, *get_args(annotation))
        model = next((a for a in options if isinstance(a, type) and issubclass(a, BaseModel)), None)
        mapping = next((a for a in options if get_origin(a) in (dict, Mapping)), None)
        if model is not None and isinstance(part, str) and part in model.model_fields:
            annotation = model.model_fields[part].annotation
        elif mapping is not None:
            annotation = get_args(mapping)[-1]  # the value type; ``part`` is a key
        else:
            return any(is_secret_name(str(p)) for p in loc)
    return SecretStr in (annotation, *get_args(annotation))


def _describe(exc: ValidationError, origin: Mapping[str, str]) -> list[str]:
    lines = []
    for err in exc.errors():
        path = ".".join(str(part) for part in err["loc"])
        value = err.get("input")
        shown = "**********" if _is_secret_setting(err["loc"]) else repr(value)
        source = origin.get(path)
        if source is None:  # a parent section came whole from one place
            parents = [k for k in origin if path.startswith(k + ".")]
            source = origin[max(parents, key=len)] if parents else "defaults"
        where = f"TRADELAB__{path.upper().replace('.', '__')}" if source == "environment" else source
        if err["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown setting (value {shown}, from {where})")
        else:
            lines.append(f"{path} = {shown} (from {where}): {err['msg']}")
    return lines
