"""Probes and metrics: ``/health`` (liveness), ``/ready`` (database and schema), ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from tradelab.api.deps import Svc, Viewer
from tradelab.api.routes._common import AUTHED
from tradelab.api.schemas import Health, Readiness

router = APIRouter(tags=["system"])


@router.get("/health", response_model=Health, summary="Liveness: the process answers")
def health() -> Health:
    return Health()


@router.get("/ready", response_model=Readiness, summary="Readiness: database reachable, schema at head",
            responses={503: {"model": Readiness, "description": "not ready"}})
def ready(svc: Svc) -> Response:
    checks: dict[str, str] = {}
    ok = True
    try:
        current, head = svc.store.current_revision(), svc.store.head_revision()
        checks["database"] = "ok"
        ok = current == head
        checks["schema"] = f"{current} (head)" if ok else f"{current or 'empty'}; head is {head}"
    except Exception as exc:  # reported, not raised: a probe must answer
        ok = False
        checks["database"] = f"unreachable ({type(exc).__name__})"
    body = Readiness(status="ready" if ok else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics (text exposition format)",
            response_class=Response, responses={
                200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                      "description": "metrics"}, **AUTHED})
def metrics(svc: Svc, _: Viewer) -> Response:
    return Response(svc.metrics.render(), media_type=CONTENT_TYPE_LATEST)
