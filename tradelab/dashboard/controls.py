"""Operator controls, gated by role; every action goes through :class:`ControlService`.

The widgets a role may not use are disabled (viewers get a read-only card),
but the gate that matters is the service: each click re-authenticates the
browser session and the service checks the role again and writes the audit log.

* strategies: enable/disable per account (trader+);
* kill switch: engage (trader+, after an explicit confirmation), resume (admin);
* flatten: halt and close every open position of the account (trader+, after an
  explicit confirmation): ``tradelab risk halt --flatten``, i.e. the kill switch with
  the engines' flatten mark, which each engine acts on at its next bar;
* jobs: trigger a configured job now (trader+; needs a job runner in this process).
"""

from __future__ import annotations

import html
from typing import Any

import panel as pn

from tradelab.auth.roles import Principal, Role
from tradelab.dashboard.actions import ActionCard, Confirmation
from tradelab.dashboard.login import on_click
from tradelab.dashboard.state import DashboardState, Snapshot
from tradelab.risk.manager import FLATTEN_MARK

DEFAULT_HALT_REASON = "manual halt from the dashboard"
DEFAULT_FLATTEN_REASON = "flatten from the dashboard"


def _set_options(select: Any, options: list[str]) -> None:
    """New options, keeping the selection when it is still offered (else the first one)."""
    if list(select.options) != options or (options and select.value not in options):
        value = select.value if select.value in options else (options[0] if options else None)
        select.param.update(options=options, value=value)


class Controls(ActionCard):
    """Strategy switches, kill switch and job trigger for one browser session."""

    def __init__(self, session: Any, control: Any, state: DashboardState) -> None:
        super().__init__(session, control, state)
        w = pn.widgets
        self.strategy = w.Select(label="Strategy", options=[], width=220)
        self.enable = w.Button(label="Enable", color="success", width=100)
        self.disable = w.Button(label="Disable", color="warning", width=100)
        self.engage = w.Button(label="Engage kill switch…", color="danger", width=220)
        self.halt_reason = w.TextInput(label="Reason", value=DEFAULT_HALT_REASON, width=300)
        self.halt_step = Confirmation(
            "<b>Halt all trading on this account?</b> Engines stop opening orders at their "
            "next bar; only an admin can resume.",
            "Confirm halt", self.confirm_engage, self.halt_reason, confirm_width=140)
        self.confirm, self.cancel, self.confirm_box = (
            self.halt_step.confirm, self.halt_step.cancel, self.halt_step.box)
        self.flatten = w.Button(label="Flatten all positions…", color="danger", width=220)
        self.flatten_reason = w.TextInput(label="Flatten reason", value=DEFAULT_FLATTEN_REASON,
                                          width=300)
        self.flatten_step = Confirmation(
            "<b>Halt trading and close every open position on this account?</b> Each engine "
            "sends closing market orders at its next bar and opens nothing new; only an admin "
            "can resume.",
            "Confirm flatten", self.do_flatten, self.flatten_reason)
        self.confirm_flatten, self.cancel_flatten, self.flatten_box = (
            self.flatten_step.confirm, self.flatten_step.cancel, self.flatten_step.box)
        self.resume_reason = w.TextInput(label="Resume reason", value="reviewed; resuming",
                                         width=300)
        self.resume = w.Button(label="Resume trading", color="primary", width=160)
        self.job = w.Select(label="Job", options=[], width=220)
        self.job_note = pn.pane.HTML("<span style='color:#6b7280'>No jobs: none configured, "
                                     "or no job runner in this process.</span>", visible=False)
        self.trigger = w.Button(label="Run job now", color="primary", width=140)
        self.role_note = pn.pane.HTML("")
        self.strategy_states = pn.pane.HTML("", sizing_mode="stretch_width")
        self.enable.on_click(on_click(lambda: self.set_strategy(True)))
        self.disable.on_click(on_click(lambda: self.set_strategy(False)))
        self.engage.on_click(on_click(self.ask_engage))
        self.resume.on_click(on_click(self.do_resume))
        self.flatten.on_click(on_click(self.ask_flatten))
        self.trigger.on_click(on_click(self.trigger_job))
        self.panel = pn.Column(
            self.role_note,
            pn.pane.HTML("<b>Strategies</b>"), pn.Row(self.strategy, self.enable, self.disable),
            self.strategy_states,
            pn.pane.HTML("<b>Kill switch</b>"), pn.Row(self.engage), self.confirm_box,
            pn.Row(self.resume_reason, self.resume),
            pn.Row(self.flatten), self.flatten_box,
            pn.pane.HTML("<b>Jobs</b>"), pn.Row(self.job, self.trigger), self.job_note,
            self.message, sizing_mode="stretch_width")

    # -- state ----------------------------------------------------------------------
    @property
    def buttons(self) -> list[Any]:
        """Every widget that changes something."""
        return [self.enable, self.disable, self.engage, self.confirm, self.resume, self.trigger,
                self.strategy, self.job, self.halt_reason, self.resume_reason, self.flatten,
                self.confirm_flatten, self.flatten_reason]

    def update(self, snap: Snapshot, principal: Principal | None) -> None:
        """Options from the snapshot, enabled states from the role and the kill switch."""
        names = [s["name"] for s in snap.strategies]
        _set_options(self.strategy, names)
        _set_options(self.job, list(snap.jobs))
        self.strategy_states.object = "".join(
            f"<span data-testid='strategy-{html.escape(s['name'])}' data-enabled="
            f"'{str(bool(s['enabled'])).lower()}' style='display:inline-block;margin:2px 6px 2px 0;"
            f"padding:2px 8px;border-radius:10px;font-size:12px;"
            f"background:{'#dcfce7' if s['enabled'] else '#fee2e2'}'>"
            f"{html.escape(s['name'])}: {'on' if s['enabled'] else 'off'}</span>"
            for s in snap.strategies if s["enabled"] is not None)
        role = principal.role if principal is not None else None
        trader = role is not None and role >= Role.trader
        admin = role is not None and role >= Role.admin
        halted = bool(snap.kill_switch is not None and snap.kill_switch.engaged)
        has_account = snap.kill_switch is not None
        self.strategy.disabled = self.enable.disabled = self.disable.disabled = \
            not (trader and names and has_account)
        self.engage.disabled = not (trader and has_account) or halted
        self.halt_reason.disabled = self.confirm.disabled = not trader
        self.resume.disabled = self.resume_reason.disabled = not (admin and halted)
        flattening = halted and (snap.kill_switch.reason or "").startswith(FLATTEN_MARK)
        # A plain halt can still be turned into a flatten; one already asked for cannot.
        self.flatten.disabled = not (trader and has_account) or flattening
        self.flatten_reason.disabled = self.confirm_flatten.disabled = not trader
        if flattening:
            self.flatten_step.hide()
        self.job.disabled = self.trigger.disabled = not (trader and snap.jobs)
        self.job_note.visible = not snap.jobs
        if halted:
            self.halt_step.hide()
        who = f"{principal.username} ({principal.role.name})" if principal else "nobody"
        self.role_note.object = (
            f"<div style='color:#6b7280'>Signed in as <b>{who}</b>. "
            + ("Viewers can watch but not act." if not trader else
               "Traders switch strategies, halt or flatten trading and run jobs." if not admin else
               "Admins can also resume trading after a halt.") + "</div>")

    # -- actions ------------------------------------------------------------------------
    def set_strategy(self, enabled: bool) -> bool:
        """Enable or disable the selected strategy on the shown account."""
        name, account = self.strategy.value, self.state.account
        if not name:
            self._say("Pick a strategy first.", "warning")
            return False
        return self._act(lambda p: self.control.set_strategy_enabled(
            p, account, name, enabled, "from the dashboard"),
            f"Strategy {name} {'enabled' if enabled else 'disabled'} on {account}.")

    def ask_engage(self) -> None:
        """First step of a halt: show the confirmation box."""
        self.halt_step.ask()

    def cancel_engage(self) -> None:
        self.halt_step.hide()

    def confirm_engage(self) -> bool:
        """Second step: engage the kill switch on the shown account."""
        account = self.state.account
        reason = (self.halt_reason.value or "").strip() or DEFAULT_HALT_REASON
        ok = self._act(lambda p: self.control.engage_kill_switch(p, account, reason),
                       f"Kill switch engaged on {account}: trading halted.")
        if ok:
            self.halt_step.hide()
        return ok

    def ask_flatten(self) -> None:
        """First step of a flatten: show its confirmation box."""
        self.flatten_step.ask()

    def cancel_flatten_box(self) -> None:
        self.flatten_step.hide()

    def do_flatten(self) -> bool:
        """Second step: halt the shown account with the flatten mark (audit-logged)."""
        account = self.state.account
        reason = (self.flatten_reason.value or "").strip() or DEFAULT_FLATTEN_REASON
        ok = self._act(lambda p: self.control.engage_kill_switch(p, account, reason, True),
                       f"Flatten requested on {account}: trading halted, positions closing.")
        if ok:
            self.flatten_step.hide()
        return ok

    def do_resume(self) -> bool:
        """Release the kill switch (the service allows admins only)."""
        account = self.state.account
        reason = (self.resume_reason.value or "").strip() or "resumed from the dashboard"
        return self._act(lambda p: self.control.resume(p, account, reason),
                         f"Trading resumed on {account}.")

    def trigger_job(self) -> bool:
        """Run the selected job now."""
        name = self.job.value
        if not name:
            self._say("Pick a job first.", "warning")
            return False
        return self._act(lambda p: self.control.trigger_job(p, name, {}),
                         f"Job {name} queued.")

    def __panel__(self) -> Any:
        return self.panel


__all__ = ["DEFAULT_FLATTEN_REASON", "DEFAULT_HALT_REASON", "Controls"]
