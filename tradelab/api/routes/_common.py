"""Shared OpenAPI response declarations and list helpers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from tradelab.api.schemas import Problem, ValidationProblem

T = TypeVar("T")

R400: dict[int | str, dict[str, Any]] = {400: {"model": Problem,
                                              "description": "the body could not be decoded"}}
R401: dict[int | str, dict[str, Any]] = {401: {"model": Problem, "description": "not authenticated"}}
R403: dict[int | str, dict[str, Any]] = {403: {"model": Problem, "description": "role too low"}}
R404: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "not found"}}
R409: dict[int | str, dict[str, Any]] = {409: {"model": Problem, "description": "conflict"}}
R422: dict[int | str, dict[str, Any]] = {422: {"model": ValidationProblem,
                                              "description": "invalid request"}}
R429: dict[int | str, dict[str, Any]] = {429: {"model": Problem,
                                              "description": "rate limited (see Retry-After)"}}
R413: dict[int | str, dict[str, Any]] = {413: {"model": Problem, "description": (
    "request body over [api] max_body_bytes; refused before it is read, connection closed")}}
R503: dict[int | str, dict[str, Any]] = {503: {"model": Problem, "description": "unavailable"}}
# Every authenticated route can answer these.
AUTHED = {**R401, **R403, **R422, **R429}
# Routes that take a JSON body can also find it undecodable (400) or invalid (422).
BODY = {**R400, **R422}
# The request guard answers these on every route (429: all but the probes).
GUARDED = {**R413, **R429}


def last(items: Sequence[T], limit: int) -> list[T]:
    """The ``limit`` most recent items of a chronological list, still in order."""
    return list(items[-limit:]) if limit else []
