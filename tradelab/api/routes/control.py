"""Strategies (enable/disable), risk and kill switch, runs and jobs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from tradelab.api.control import Unavailable
from tradelab.api.deps import Admin, Ip, Svc, Trader, Viewer
from tradelab.api.routes._common import AUTHED, BODY, R404, R409, R503
from tradelab.api.schemas import (
    JobOut,
    JobRunOut,
    JobTrigger,
    KillSwitchOut,
    KillSwitchRequest,
    RiskEventOut,
    RiskStatus,
    RunOut,
    StrategyOut,
    StrategyToggle,
)

router = APIRouter(responses={**AUTHED, **R404})
Account = Annotated[str, Query(min_length=1, max_length=100, examples=["paper"])]


def _strategy(d: dict[str, Any]) -> StrategyOut:
    return StrategyOut.model_validate(d)


@router.get("/strategies", response_model=list[StrategyOut], tags=["strategies"],
            summary="Strategies with parameters (and their switch on an account)")
def strategies(svc: Svc, _: Viewer,
               account: Annotated[str | None, Query(min_length=1, max_length=100)] = None
               ) -> list[StrategyOut]:
    return [_strategy(s) for s in svc.control.strategies(account)]


@router.post("/strategies/{name}/enable", response_model=StrategyOut, tags=["strategies"],
             summary="Let a strategy trade on an account (trader)", responses=BODY,
             description="Persisted; a running engine picks it up at its next bar.")
def enable(name: str, svc: Svc, ip: Ip, who: Trader,
           body: Annotated[StrategyToggle | None, Body()] = None) -> StrategyOut:
    body = body or StrategyToggle()
    return _strategy(svc.control.set_strategy_enabled(who, body.account, name, True, body.reason, ip=ip))


@router.post("/strategies/{name}/disable", response_model=StrategyOut, tags=["strategies"],
             summary="Stop a strategy from opening orders on an account (trader)", responses=BODY)
def disable(name: str, svc: Svc, ip: Ip, who: Trader,
            body: Annotated[StrategyToggle | None, Body()] = None) -> StrategyOut:
    body = body or StrategyToggle()
    return _strategy(svc.control.set_strategy_enabled(who, body.account, name, False, body.reason,
                                                      ip=ip))


@router.get("/risk", response_model=RiskStatus, tags=["risk"],
            summary="Kill switch and recent risk events")
def risk(svc: Svc, _: Viewer, account: Account = "paper",
         limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> RiskStatus:
    ks, events = svc.control.risk_status(account, limit)
    return RiskStatus(account=account,
                      kill_switch=KillSwitchOut.model_validate(ks, from_attributes=True),
                      events=[RiskEventOut.model_validate(e, from_attributes=True) for e in events])


@router.post("/risk/kill-switch/engage", response_model=KillSwitchOut, tags=["risk"],
             summary="Halt trading on an account (trader)", responses=BODY,
             description="Engines re-read the switch each bar; `flatten` also closes positions.")
def engage(body: KillSwitchRequest, svc: Svc, ip: Ip, who: Trader) -> KillSwitchOut:
    ks = svc.control.engage_kill_switch(who, body.account, body.reason, body.flatten, ip=ip)
    return KillSwitchOut.model_validate(ks, from_attributes=True)


@router.post("/risk/kill-switch/resume", response_model=KillSwitchOut, tags=["risk"],
             summary="Release the kill switch (admin)", responses=BODY)
def resume(body: KillSwitchRequest, svc: Svc, ip: Ip, who: Admin) -> KillSwitchOut:
    ks = svc.control.resume(who, body.account, body.reason, ip=ip)
    return KillSwitchOut.model_validate(ks, from_attributes=True)


@router.get("/runs", response_model=list[RunOut], tags=["runs"], summary="Engine runs, oldest first")
def runs(svc: Svc, _: Viewer,
         account: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
         limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[RunOut]:
    rows = svc.store.runs(account)[-limit:]
    return [RunOut.model_validate(r, from_attributes=True) for r in rows]


@router.get("/runs/{run_id}", response_model=RunOut, tags=["runs"], summary="One engine run")
def run(run_id: int, svc: Svc, _: Viewer) -> RunOut:
    from tradelab.auth.errors import NotFound

    rec = svc.store.get_run(run_id) if 0 < run_id < 2**31 else None
    if rec is None:
        raise NotFound(f"no run {run_id}")
    return RunOut.model_validate(rec, from_attributes=True)


@router.get("/runs/{run_id}/drift", response_model=dict[str, Any], tags=["runs"],
            summary="A run's drift from research over the bars it received (tradelab parity --run)",
            responses={**R409, **R503})
def run_drift(run_id: int, svc: Svc, _: Viewer) -> dict[str, Any]:
    """Research re-run over the bars the run received, compared trade by trade (single
    symbol or portfolio): equities, gap, money per cause, data differences and every row,
    as ``tradelab parity --run RUN --json`` prints it. Runs research: seconds, not
    milliseconds."""
    from tradelab.auth.errors import Conflict, NotFound
    from tradelab.errors import TradelabError

    if (svc.store.get_run(run_id) if 0 < run_id < 2**31 else None) is None:
        raise NotFound(f"no run {run_id}")
    if svc.drift is None:
        raise Unavailable("drift reports are not served by this API (see tradelab.app.App.api)")
    try:
        return svc.drift(run_id)
    except TradelabError as exc:  # e.g. a run recorded before its bars were
        raise Conflict(str(exc)) from exc


@router.get("/jobs", response_model=list[JobOut], tags=["jobs"], summary="Known jobs")
def jobs(svc: Svc, _: Viewer) -> list[JobOut]:
    return [JobOut.model_validate(j) for j in svc.control.jobs()]


@router.get("/jobs/runs", response_model=list[JobRunOut], tags=["jobs"],
            summary="Job run history, newest first")
def job_runs(svc: Svc, _: Viewer, job: Annotated[str | None, Query(max_length=100)] = None,
             limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[JobRunOut]:
    return [JobRunOut.model_validate(r) for r in svc.control.job_runs(job, limit)]


@router.post("/jobs/{name}/trigger", response_model=JobRunOut, status_code=202, tags=["jobs"],
             summary="Run a job now (trader)", responses={**BODY, **R503})
def trigger(name: str, svc: Svc, ip: Ip, who: Trader,
            body: Annotated[JobTrigger | None, Body()] = None) -> JobRunOut:
    body = body or JobTrigger()
    return JobRunOut.model_validate(svc.control.trigger_job(who, name, body.parameters, ip=ip))
