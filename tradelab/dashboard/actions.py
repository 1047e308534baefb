"""What every card of operator actions shares: a confirmation step and the outcome message.

:class:`Confirmation` is the second step of a consequential action (halt, flatten,
close a position): a box with the question, optional inputs and Confirm / Cancel,
hidden until asked for. It is built once and only its visibility and its question
text change afterwards: the store refreshes (every poll that found something new)
push data into existing widgets and never replace them, so a confirmation shown
while an engine trades stays on the page until the user answers it.

:class:`ActionCard` runs an action as the logged-in user (re-authenticated at each
click: a revoked login or a changed role takes effect at once), shows its outcome
and refreshes the data shown, so the page reflects the action without waiting for
the next poll.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import panel as pn

from tradelab.auth.errors import AuthError
from tradelab.auth.roles import Principal
from tradelab.dashboard.login import on_click

AlertType = Literal["primary", "secondary", "success", "danger", "warning", "info", "light",
                    "dark"]

CONFIRM_STYLE = {"background": "#fff7ed", "border": "1px solid #fdba74", "border-radius": "6px",
                 "padding": "6px"}


class Confirmation:
    """A hidden box asking to confirm one action.

    Parameters
    ----------
    question
        The box's text (HTML); :meth:`ask` may replace it (e.g. to name what is acted on).
    confirm_label
        The confirm button's label.
    on_confirm
        Called when the confirm button is clicked.
    *inputs
        Widgets shown between the question and the buttons (e.g. a reason).
    confirm_width
        The confirm button's width in pixels.
    """

    def __init__(self, question: str, confirm_label: str, on_confirm: Callable[[], object],
                 *inputs: Any, confirm_width: int = 160) -> None:
        self.question = pn.pane.HTML(question)
        self.confirm = pn.widgets.Button(label=confirm_label, color="danger",
                                         width=confirm_width)
        self.cancel = pn.widgets.Button(label="Cancel", color="light", width=100)
        self.box = pn.Column(self.question, *inputs, pn.Row(self.confirm, self.cancel),
                             visible=False, styles=CONFIRM_STYLE)
        self.confirm.on_click(on_click(on_confirm))
        self.cancel.on_click(on_click(self.hide))

    @property
    def shown(self) -> bool:
        """Whether the box is waiting for an answer."""
        return bool(self.box.visible)

    def ask(self, question: str | None = None) -> None:
        """Show the box (with ``question`` instead of the current text, if given)."""
        if question is not None:
            self.question.object = question
        self.box.visible = True

    def hide(self) -> None:
        """Hide the box (cancelled, done, or no longer applicable)."""
        self.box.visible = False


class ActionCard:
    """Runs actions as the session's user and reports their outcome in :attr:`message`.

    Parameters
    ----------
    session
        The browser session's :class:`~tradelab.dashboard.login.UserSession`.
    control
        The :class:`~tradelab.api.control.ControlService` (role checks, audit log).
    state
        The session's :class:`~tradelab.dashboard.state.DashboardState`.
    """

    def __init__(self, session: Any, control: Any, state: Any) -> None:
        self.session, self.control, self.state = session, control, state
        self.message = pn.pane.Alert("", alert_type="info", visible=False,
                                     sizing_mode="stretch_width")

    def _say(self, text: str, kind: AlertType = "success") -> None:
        self.message.alert_type = kind
        self.message.object = text
        self.message.visible = True

    def _act(self, fn: Callable[[Principal], Any], done: str | Callable[[Any], str],
             refused: tuple[type[Exception], ...] = (AuthError,)) -> bool:
        """Run ``fn(principal)``; say ``done`` (or ``done(result)``), or why it was refused
        (one of ``refused``: the role, the login, or what the service names as bad)."""
        try:
            principal = self.session.current()
            result = fn(principal)
        except refused as exc:
            self._say(str(exc), "danger")
            return False
        self._say(done(result) if callable(done) else done)
        self.state.refresh()
        return True


__all__ = ["CONFIRM_STYLE", "ActionCard", "AlertType", "Confirmation"]
