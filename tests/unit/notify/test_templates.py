"""Templates per event type render from config/templates; problems fall back, never lose an alert."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradelab.notify import EVENT_SEVERITY, Templates

ROOT = Path(__file__).resolve().parents[3]
CONTEXTS = {
    "order_filled": {"client_order_id": "tl-1", "strategy": "sma_cross", "account": "paper",
                     "run_id": 7, "symbol": "SPX", "side": "buy", "quantity": "35",
                     "price": "2790.54", "fees": "48.83", "at": "2018-03-12"},
    "risk_alert": {"account": "paper", "rule": "max_drawdown", "message": "drawdown 26% > 25%",
                   "strategy": "sma_cross", "client_order_id": None, "at": "t", "halts_trading": True},
    "kill_switch": {"account": "paper", "reason": "max drawdown", "by": "risk", "at": "t"},
    "job_failed": {"job": "nightly", "run_id": 12, "status": "failed", "error": "DeadKernelError",
                   "attempts": 2, "duration": 3.25, "notebook": "nb.ipynb", "output_path": "/o"},
    "job_succeeded": {"job": "nightly", "run_id": 13, "duration": 9.5, "output_path": "/o",
                      "summary": {"equity": 101.5, "fills": 4}},
    "daily_summary": {"account": "paper", "day": "2026-11-24", "equity": 101234.5, "cash": 5000,
                      "day_pnl": -12.25, "fills": 3, "risk_events": 0, "kill_switch_engaged": False},
    "health_alert": {"check": "database", "ok": False, "detail": "refused", "component": "engine",
                     "at": "t"},
}
EXPECTED_TITLES = {
    "order_filled": "Filled: buy 35.0000 SPX @ 2,790.54",
    "risk_alert": "Risk critical: max_drawdown on paper",
    "kill_switch": "KILL SWITCH engaged on paper",
    "job_failed": "Job nightly failed (run 12)",
    "job_succeeded": "Job nightly succeeded (run 13)",
    "daily_summary": "Daily summary 2026-11-24: paper equity 101,234.50",
    "health_alert": "Health FAILING: database",
}


@pytest.fixture(scope="module")
def templates() -> Templates:
    return Templates(ROOT / "config" / "templates")


def test_every_event_type_has_a_valid_template(templates: Templates) -> None:
    assert set(EVENT_SEVERITY) <= set(templates.available())
    assert templates.check() == {}


@pytest.mark.parametrize("event_type", sorted(CONTEXTS))
def test_templates_render_their_context(templates: Templates, event_type: str) -> None:
    ctx = {**CONTEXTS[event_type], "event_type": event_type,
           "severity": "critical" if event_type == "risk_alert" else EVENT_SEVERITY[event_type]}
    out = templates.render(event_type, ctx)
    assert out.template == f"{event_type}.j2"
    assert out.title == EXPECTED_TITLES[event_type]
    assert out.body and "{{" not in out.body


def test_halted_risk_alert_says_how_to_resume(templates: Templates) -> None:
    ctx = {**CONTEXTS["risk_alert"], "severity": "critical"}
    assert "tradelab risk resume --account paper" in templates.render("risk_alert", ctx).body
    calm = templates.render("risk_alert", {**ctx, "halts_trading": False, "severity": "warning"})
    assert "resume" not in calm.body


def test_a_missing_variable_falls_back_to_plain_text(templates: Templates) -> None:
    out = templates.render("kill_switch", {"account": "paper", "severity": "critical"})
    assert out.template is None
    assert out.title == "[critical] kill_switch"
    assert "account: paper" in out.body


def test_an_event_without_template_uses_the_fallback(tmp_path: Path) -> None:
    out = Templates(tmp_path).render("something_new", {"a": 1})
    assert (out.template, out.title, out.body) == (None, "something_new", "a: 1")


def test_check_reports_templates_without_blocks(tmp_path: Path) -> None:
    (tmp_path / "bad.j2").write_text("{% block title %}x{% endblock %}")
    assert Templates(tmp_path).check() == {"bad.j2": "missing block(s): body"}
