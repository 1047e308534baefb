"""Close one open position of the selected run: pick it, ask, confirm (trader+).

The widgets are built once and updated in place: the symbol picker's options are
set only when the set of open positions changes, and the confirmation is a
persistent :class:`~tradelab.dashboard.actions.Confirmation` whose visibility
toggles. A store refresh (each poll that found a new bar while an engine trades)
therefore never replaces what the user is about to click; a per-row button drawn
inside the re-rendered positions view lost its pending confirmation at every bar.

Confirming stores a close request through
:meth:`~tradelab.api.control.ControlService.close_position` (role-checked,
audit-logged); the run's engine acts on it at its next store poll with one market
order tagged ``FLATTEN`` (:mod:`tradelab.engine.closer`). The request is for the
run, symbol and quantity the question named: the confirmation is withdrawn when
the page switches run or the position closes meanwhile.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import panel as pn

from tradelab.auth.errors import AuthError
from tradelab.auth.roles import Principal, Role
from tradelab.dashboard.actions import ActionCard, Confirmation
from tradelab.dashboard.login import on_click
from tradelab.dashboard.state import DashboardState, Snapshot
from tradelab.store.errors import StoreError


@dataclass(frozen=True)
class _Asked:
    """What the shown question names (the request is for exactly this)."""

    run: int
    symbol: str
    quantity: float


def quantity_text(quantity: float) -> str:
    """A quantity as plain digits (``100``, ``0.0125``, ``-3``): no exponent, no padding."""
    text = f"{quantity:,.10f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def question(run: int, symbol: str, quantity: float) -> str:
    """The confirmation's text, naming the run, the symbol and the quantity to close."""
    side = "sell" if quantity > 0 else "buy back"
    sym, qty = html.escape(symbol), quantity_text(abs(quantity))
    return (f"<b data-testid='close-question' data-symbol='{sym}' data-quantity='{qty}'>"
            f"Close the {sym} position of run {run}: {side} {qty} {sym}?</b> The run's engine "
            f"sends one market order at its next {sym} bar (a stopped run's engine does when "
            f"it resumes).")


def requests_html(snap: Snapshot) -> str:
    """The run's open positions count and its latest close requests with their state."""
    held = len(snap.positions)
    rows = "".join(
        f"<li data-testid='close-request' data-symbol='{html.escape(r.symbol)}' "
        f"data-status='{html.escape(r.status)}' data-order='{html.escape(r.client_order_id or '')}'>"
        f"{html.escape(r.symbol)}: {html.escape(r.status)} (asked by {html.escape(r.requested_by)}"
        f" at {r.requested_at:%Y-%m-%d %H:%M:%S} UTC"
        + (f"; order {html.escape(r.client_order_id)}" if r.client_order_id else "") + ")</li>"
        for r in snap.closes)
    return (f"<div style='color:#6b7280;font-size:12px'><span data-testid='open-position-count' "
            f"data-count='{held}'>{held} open position{'' if held == 1 else 's'}</span> in this "
            f"run." + (f" Close requests:<ul style='margin:2px 0'>{rows}</ul>" if rows else "")
            + "</div>")


class PositionCloser(ActionCard):
    """The "Close position" row under the selected run's open positions.

    Parameters
    ----------
    session, control, state
        As for :class:`~tradelab.dashboard.actions.ActionCard`.
    """

    def __init__(self, session: Any, control: Any, state: DashboardState) -> None:
        super().__init__(session, control, state)
        self.symbol = pn.widgets.Select(label="Position", options=[], width=160,
                                        disabled=True)
        self.close = pn.widgets.Button(label="Close position…", color="danger", width=170,
                                       disabled=True, margin=(26, 10, 10, 10))
        self.step = Confirmation("", "Confirm close", self.do_close)
        self.note = pn.pane.HTML("", sizing_mode="stretch_width")
        self.close.on_click(on_click(self.ask_close))
        self.step.cancel.on_click(on_click(self.withdraw))  # forget what it named, too
        self.symbol.param.watch(self._picked, "value")
        self._asked: _Asked | None = None
        self._held: dict[str, float] = {}
        self._run: int | None = None
        self.panel = pn.Column(pn.Row(self.symbol, self.close), self.step.box, self.note,
                               self.message, sizing_mode="stretch_width")

    def update(self, snap: Snapshot, principal: Principal | None) -> None:
        """The run's open symbols into the picker (only when they changed), enabled states
        from the role, and the confirmation withdrawn if what it names is gone."""
        self._run = snap.summary.get("run")
        self._held = {str(r.symbol): float(r.quantity) for r in snap.positions.itertuples()}
        options = sorted(self._held)
        if list(self.symbol.options) != options:
            value = self.symbol.value if self.symbol.value in options else (
                options[0] if options else None)
            self.symbol.param.update(options=options, value=value)
        trader = principal is not None and principal.role >= Role.trader
        can = trader and bool(options) and self._run is not None
        self.symbol.disabled = self.close.disabled = not can
        self.step.confirm.disabled = not trader
        asked = self._asked
        if asked is not None and (asked.run != self._run or asked.symbol not in self._held):
            self.withdraw()
        self.note.object = requests_html(snap)

    def _picked(self, event: Any) -> None:
        if self._asked is not None and event.new != self._asked.symbol:
            self.withdraw()

    def ask_close(self) -> bool:
        """First step: show the question for the picked position; whether there was one."""
        sym, run = self.symbol.value, self._run
        if run is None or not sym or sym not in self._held:
            self._say("Pick an open position first.", "warning")
            return False
        self._asked = _Asked(run, sym, self._held[sym])
        self.step.ask(question(run, sym, self._held[sym]))
        return True

    def withdraw(self) -> None:
        """Hide the question (cancelled, or what it named is gone)."""
        self._asked = None
        self.step.hide()

    def do_close(self) -> bool:
        """Second step: request the close the question named (the service checks the role)."""
        asked = self._asked
        if asked is None:
            self._say("Nothing to close: ask again.", "warning")
            return False
        account = self.state.account
        ok = self._act(
            lambda p: self.control.close_position(p, account, asked.run, asked.symbol),
            lambda request: (f"Close of {asked.symbol} requested (run {asked.run}, request "
                             f"{request}): the engine sends the order at its next bar."),
            refused=(AuthError, StoreError))
        if ok:
            self.withdraw()
        return ok

    def __panel__(self) -> Any:
        return self.panel


__all__ = ["PositionCloser", "quantity_text", "question", "requests_html"]
