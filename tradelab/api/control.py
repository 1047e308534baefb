"""Operator controls shared by the REST API and the dashboard (no web framework here).

:class:`ControlService` enforces the same role rules wherever it is called
from and writes every action to the audit log:

* strategies: list with parameters; enable/disable per account (persisted in
  ``strategy_flags``; a running engine re-reads them each bar);
* risk: kill-switch status, engage (trader), resume (admin);
* jobs: list, history and trigger through a job runner when one is wired,
  else job history straight from the ``job_runs`` table.
"""

from __future__ import annotations

from typing import Any, Protocol

from tradelab.auth import audit as ev
from tradelab.auth.errors import AuthError, NotFound
from tradelab.auth.roles import Principal, Role
from tradelab.auth.service import AuthService
from tradelab.store.auth_repo import AuthRepo
from tradelab.store.records import KillSwitchState, RiskEventRecord
from tradelab.store.store import Store


class Unavailable(AuthError):
    """A feature whose backend is not wired in this process (HTTP 503)."""

    status = 503


class JobsBackend(Protocol):
    """What the API needs from a job runner (``tradelab.jobs``)."""

    def jobs(self) -> list[dict[str, Any]]: ...

    def runs(self, job: str | None = None, limit: int = 100) -> list[dict[str, Any]]: ...

    def trigger(self, name: str, parameters: dict[str, Any], by: str) -> dict[str, Any]: ...


class StoreJobs:
    """Read-only jobs backend over the ``job_runs`` table (no runner to trigger with)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def jobs(self) -> list[dict[str, Any]]:
        from tradelab.store.jobs_repo import JobsRepo

        return [{"name": n, "detail": {}} for n in JobsRepo(self.store).job_names()]

    def runs(self, job: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        from tradelab.store.jobs_repo import JobsRepo

        detail = ("trigger", "attempts", "started_at", "finished_at", "code_version", "output_path")
        out = []
        for r in JobsRepo(self.store).runs(job, limit):
            out.append({"id": r.id, "job": r.job, "status": r.status,
                        "detail": {k: (v.isoformat() if hasattr(v, "isoformat") else v)
                                   for k in detail for v in [getattr(r, k)]}})
        return out

    def trigger(self, name: str, parameters: dict[str, Any], by: str) -> dict[str, Any]:
        raise Unavailable("no job runner in this process: start jobs with `tradelab jobs run`")


class ControlService:
    """Strategy switches, kill switch and jobs, with RBAC and audit.

    Parameters
    ----------
    store
        The trading store.
    auth
        For role checks and the audit log.
    registry
        A :class:`~tradelab.strategy.registry.StrategyRegistry` (``None``: no strategies).
    jobs
        A :class:`JobsBackend` (default: read-only :class:`StoreJobs`).
    """

    def __init__(self, store: Store, auth: AuthService, registry: Any = None,
                 jobs: JobsBackend | None = None) -> None:
        self.store, self.auth, self.registry = store, auth, registry
        self.repo = AuthRepo(store)
        self.jobs_backend: JobsBackend = jobs if jobs is not None else StoreJobs(store)

    def _account(self, account: str) -> None:
        if self.store.get_account(account) is None:
            raise NotFound(f"no account {account!r}")

    # -- strategies -------------------------------------------------------------------
    def strategies(self, account: str | None = None) -> list[dict[str, Any]]:
        """Registered strategies with parameters (and their flag on ``account``)."""
        if account is not None:
            self._account(account)
        flags = self.repo.strategy_flags(account) if account is not None else {}
        out = []
        for name in self.registry.names() if self.registry is not None else []:
            cls = self.registry.get(name)
            flag = flags.get(name)
            out.append({
                "name": name, "description": cls.description,
                "params": [vars(p) for p in cls.param_specs()],
                "enabled": (flag.enabled if flag else True) if account is not None else None,
                "changed_by": flag.changed_by if flag else None,
                "changed_at": flag.at if flag else None,
            })
        return out

    def set_strategy_enabled(self, principal: Principal, account: str, name: str, enabled: bool,
                             reason: str | None = None, *, ip: str | None = None) -> dict[str, Any]:
        """Switch a strategy on or off for one account (trader)."""
        action = f"{'enable' if enabled else 'disable'} strategy {name}"
        self.auth.require(principal, Role.trader, action, ip=ip)
        if self.registry is None or name not in self.registry:
            raise NotFound(f"no strategy {name!r}")
        self._account(account)
        self.repo.set_strategy_enabled(account, name, enabled, at=self.auth.now(),
                                       by=principal.actor, reason=reason)
        self.auth.audit.record(ev.STRATEGY_FLAG, "ok", actor=principal.actor, subject=name, ip=ip,
                               account=account, enabled=enabled, reason=reason)
        return next(s for s in self.strategies(account) if s["name"] == name)

    # -- risk -------------------------------------------------------------------------
    def risk_status(self, account: str, limit: int = 50) -> tuple[KillSwitchState,
                                                                  list[RiskEventRecord]]:
        """The kill switch and the most recent risk events (newest last)."""
        self._account(account)
        return self.store.kill_switch(account), self.store.risk_events(account)[-limit:]

    def engage_kill_switch(self, principal: Principal, account: str, reason: str,
                           flatten: bool = False, *, ip: str | None = None) -> KillSwitchState:
        """Halt trading on ``account`` (trader); engines re-read it each bar."""
        self.auth.require(principal, Role.trader, "engage the kill switch", ip=ip)
        self._account(account)
        if flatten:
            from tradelab.risk.manager import FLATTEN_MARK  # the engines' "close everything" tag

            reason = FLATTEN_MARK + reason
        with self.store.transaction() as tx:
            tx.set_kill_switch(account, True, reason, principal.actor, self.auth.now())
        self.auth.audit.record(ev.KILL_SWITCH, "ok", actor=principal.actor, subject=account, ip=ip,
                               action="engage", flatten=flatten, reason=reason)
        return self.store.kill_switch(account)

    def close_position(self, principal: Principal, account: str, run_id: int, symbol: str, *,
                       ip: str | None = None) -> int:
        """Ask run ``run_id`` of ``account`` to close its ``symbol`` position (trader); the
        request's id. The run's engine sends the closing order at its next store poll
        (see :mod:`tradelab.store.close_repo`)."""
        self.auth.require(principal, Role.trader, f"close the {symbol} position", ip=ip)
        self._account(account)
        request = self.store.closes.request(account, run_id, symbol, principal.actor,
                                            self.auth.now())
        self.auth.audit.record(ev.CLOSE_POSITION, "ok", actor=principal.actor, subject=account,
                               ip=ip, run=run_id, symbol=symbol, request=request)
        return request

    def resume(self, principal: Principal, account: str, reason: str, *,
               ip: str | None = None) -> KillSwitchState:
        """Release the kill switch (admin only: a halt is reviewed before trading resumes)."""
        self.auth.require(principal, Role.admin, "resume trading", ip=ip)
        self._account(account)
        with self.store.transaction() as tx:
            tx.set_kill_switch(account, False, reason, principal.actor, self.auth.now())
        self.auth.audit.record(ev.KILL_SWITCH, "ok", actor=principal.actor, subject=account, ip=ip,
                               action="resume", reason=reason)
        return self.store.kill_switch(account)

    # -- jobs -------------------------------------------------------------------------
    def jobs(self) -> list[dict[str, Any]]:
        """Known jobs."""
        return self.jobs_backend.jobs()

    def job_runs(self, job: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Job run history, newest first."""
        return self.jobs_backend.runs(job, limit)

    def trigger_job(self, principal: Principal, name: str, parameters: dict[str, Any], *,
                    ip: str | None = None) -> dict[str, Any]:
        """Start a job now (trader)."""
        self.auth.require(principal, Role.trader, f"trigger job {name}", ip=ip)
        result = self.jobs_backend.trigger(name, parameters, principal.actor)
        self.auth.audit.record(ev.JOB_TRIGGERED, "ok", actor=principal.actor, subject=name, ip=ip)
        return result


__all__ = ["ControlService", "JobsBackend", "StoreJobs", "Unavailable"]
