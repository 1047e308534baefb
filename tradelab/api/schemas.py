"""Request and response models of the REST API (documented in the OpenAPI schema).

Money and quantities are decimal *strings* (exact, as stored); times are
ISO-8601 UTC. Requests forbid unknown fields so typos fail loudly (422), and
accept exactly what their schema says: booleans are JSON booleans (not ``0``
or ``"yes"``), integers JSON numbers (not ``"90"``), and every bound the server
enforces is declared (``maximum``, ``minLength``...). Bounds that come from
the configuration are written into the served schema by
:func:`tradelab.api.app.create_app`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, StrictBool
from pydantic_core import PydanticCustomError

RoleName = Literal["viewer", "trader", "admin"]
# Exact decimals as fixed-point strings ("0.0000000000", never "0E-10").
Money = Annotated[Decimal, PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json")]
_EX_TIME = "2026-01-02T14:30:00Z"
MAX_TTL_DAYS = 3650  # the ceiling of [auth] api_key_max_ttl_days


def _json_number(value: Any) -> Any:
    # JSON Schema's "integer" admits 90 and 90.0 but not "90" or true; pydantic's
    # lax mode admits all four, strict mode only the first.
    if isinstance(value, str | bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


class _In(BaseModel):
    # Python's re, like the JSON Schema validators clients use in Python (and the
    # password policy's notion of white space): one meaning for every pattern.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, regex_engine="python-re")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# -- errors ---------------------------------------------------------------------------
class Problem(_Out):
    """An error: ``detail`` says what went wrong."""

    detail: str = Field(examples=["invalid credentials"])


class FieldProblem(_Out):
    """One invalid field of a request."""

    field: str = Field(description="dotted path, e.g. body.role", examples=["body.role"])
    value: Any = Field(None, description="the value sent (secrets are masked)")
    expected: str = Field(examples=["Input should be 'viewer', 'trader' or 'admin'"])
    type: str = Field(examples=["literal_error"])


class ValidationProblem(_Out):
    """422: the request does not match the schema; one entry per bad field."""

    detail: str = Field(examples=["invalid request: body.role"])
    errors: list[FieldProblem]


# -- system ---------------------------------------------------------------------------
class Health(_Out):
    status: Literal["ok"] = "ok"


class Readiness(_Out):
    status: Literal["ready", "not ready"]
    checks: dict[str, str] = Field(examples=[{"database": "ok", "schema": "0003 (head)"}])


# -- auth -----------------------------------------------------------------------------
class LoginRequest(_In):
    username: str = Field(min_length=1, max_length=64, examples=["alice"])
    password: str = Field(min_length=1, max_length=1024, examples=["correct horse battery staple"])
    totp_code: str | None = Field(default=None, pattern=r"^\d{6}$",
                                  description="6-digit code when TOTP is on", examples=["123456"])


class RefreshRequest(_In):
    refresh_token: str = Field(min_length=1, max_length=200, examples=["tlr_..."])


class TokenResponse(_Out):
    """A session's tokens. The refresh token rotates: each one works once."""

    access_token: str = Field(examples=["eyJhbGciOiJIUzI1NiIs..."])
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="access token lifetime, seconds", examples=[900])
    access_expires_at: datetime = Field(examples=[_EX_TIME])
    refresh_token: str = Field(examples=["tlr_..."])
    refresh_expires_at: datetime = Field(examples=[_EX_TIME])
    session_id: str = Field(examples=["9f1c2e4b7a0d4c3e8b6a5f4e3d2c1b0a"])


class Me(_Out):
    username: str = Field(examples=["alice"])
    role: RoleName
    session_id: str | None = None
    api_key: str | None = Field(None, description="the key's public prefix when called with a key")
    totp_enabled: bool


class SessionOut(_Out):
    id: str
    username: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool = False


class TotpEnrollResponse(_Out):
    """Shown once: put it in an authenticator app, then confirm with a code."""

    secret: str = Field(examples=["JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"])
    uri: str = Field(examples=["otpauth://totp/tradelab:alice?secret=...&issuer=tradelab"])


class TotpVerifyRequest(_In):
    code: str = Field(pattern=r"^\d{6}$", examples=["123456"])


# -- admin ----------------------------------------------------------------------------
class UserCreate(_In):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$",
                          examples=["bob"])
    # minLength is the configured [auth] password_min_length in the served schema.
    password: str = Field(min_length=1, max_length=1024, pattern=r"\S",
                          description="at least one character that is not white space",
                          examples=["a long passphrase here"])
    role: RoleName = "viewer"


class UserOut(_Out):
    username: str
    role: RoleName
    disabled: bool
    totp_enabled: bool
    created_at: datetime


# Bounds before the validator, or pydantic cannot write them into the JSON schema.
TtlDays = Annotated[int, Field(ge=1, le=MAX_TTL_DAYS), BeforeValidator(_json_number)]


class ApiKeyCreate(_In):
    name: str = Field(min_length=1, max_length=100, examples=["grafana"])
    role: RoleName = "viewer"
    owner: str | None = Field(default=None, max_length=64, description="default: the caller")
    # maximum is the configured [auth] api_key_max_ttl_days in the served schema.
    ttl_days: TtlDays | None = Field(default=None, examples=[90],
                                     description="lifetime (default: [auth] api_key_ttl_days)")


class ApiKeyOut(_Out):
    prefix: str = Field(examples=["3f9a1c7e5b2d"])
    name: str
    role: RoleName
    owner: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    """The new key. ``key`` is shown this once; only its digest is stored."""

    key: str = Field(examples=["tlk_3f9a1c7e5b2d_..."])


class AuditOut(_Out):
    at: datetime
    event: str = Field(examples=["login_failed"])
    outcome: Literal["ok", "failed", "denied"]
    actor: str | None
    subject: str | None
    ip: str | None
    detail: dict[str, Any] | None


# -- trading --------------------------------------------------------------------------
class AccountOut(_Out):
    name: str = Field(examples=["paper"])
    currency: str = Field(examples=["USD"])
    initial_cash: Money
    cash: Money


class KillSwitchOut(_Out):
    engaged: bool
    reason: str | None = None
    by: str | None = None
    at: datetime | None = None


class EquityOut(_Out):
    at: datetime
    run_id: int | None
    cash: Money
    positions_value: Money
    equity: Money
    drawdown: Money


class AccountDetail(AccountOut):
    open_orders: int
    positions: int
    kill_switch: KillSwitchOut
    last_equity: EquityOut | None


class PositionOut(_Out):
    symbol: str = Field(examples=["SPY"])
    quantity: Money
    avg_price: Money
    realized_pnl: Money


class OrderOut(_Out):
    client_order_id: str
    broker_order_id: str | None
    account: str
    run_id: int | None
    symbol: str
    side: str
    type: str
    quantity: Money
    limit_price: Money | None
    stop_price: Money | None
    status: str
    filled_quantity: Money
    avg_fill_price: Money | None
    reason: str | None
    time_in_force: str
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class FillOut(_Out):
    fill_id: str
    client_order_id: str
    symbol: str
    side: str
    quantity: Money
    price: Money
    fees: Money
    at: datetime


# -- control --------------------------------------------------------------------------
class ParamOut(_Out):
    name: str = Field(examples=["fast"])
    kind: str = Field(examples=["int"])
    default: Any = Field(examples=[10])
    low: float | None
    high: float | None
    doc: str


class StrategyOut(_Out):
    name: str = Field(examples=["sma_cross"])
    description: str
    params: list[ParamOut]
    enabled: bool | None = Field(None, description="on the requested account (absent = enabled)")
    changed_by: str | None = None
    changed_at: datetime | None = None


class StrategyToggle(_In):
    account: str = Field(default="paper", min_length=1, max_length=100)
    reason: str | None = Field(default=None, max_length=500)


class RiskEventOut(_Out):
    strategy: str | None
    rule: str
    severity: str
    message: str
    at: datetime


class RiskStatus(_Out):
    account: str
    kill_switch: KillSwitchOut
    events: list[RiskEventOut]


class KillSwitchRequest(_In):
    account: str = Field(default="paper", min_length=1, max_length=100)
    reason: str = Field(min_length=1, max_length=400, examples=["manual halt: data feed stale"])
    flatten: StrictBool = Field(default=False,
                                description="also close every position at the next bar (engage only)")


class RunOut(_Out):
    id: int
    account: str
    strategy: str
    params: dict[str, Any]
    source: str
    symbol: str
    mode: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    last_bar_time: datetime | None
    summary: dict[str, Any] | None


class JobOut(_Out):
    name: str
    detail: dict[str, Any] = Field(default_factory=dict)


class JobRunOut(_Out):
    id: int | str
    job: str
    status: str
    detail: dict[str, Any] = Field(default_factory=dict)


class JobTrigger(_In):
    # Reserved: the runner does not take per-trigger parameters yet, so the schema
    # admits only the empty object rather than promising what would be refused.
    parameters: dict[str, Any] = Field(default_factory=dict, max_length=0, examples=[{}],
                                       description="reserved; must be empty for now")
