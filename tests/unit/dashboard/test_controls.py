"""Role gating of the controls: disabled widgets for low roles, and the service refuses anyway."""

from __future__ import annotations

from tests.unit.api.helpers import PASSWORDS
from tests.unit.dashboard.conftest import RecordingJobs
from tradelab.api.control import StoreJobs
from tradelab.dashboard.app import DashboardApp
from tradelab.dashboard.services import DashboardServices
from tradelab.store.auth_repo import AuthRepo


def _app(services: DashboardServices, user: str) -> DashboardApp:
    app = DashboardApp(services, live=False)
    app.login(user, PASSWORDS[user])
    return app


def test_a_viewer_sees_only_disabled_controls(services: DashboardServices) -> None:
    c = _app(services, "viewer").controls
    assert all(w.disabled for w in c.buttons)
    assert "Viewers can watch but not act" in c.role_note.object


def test_a_viewer_is_refused_by_the_service_even_when_clicking(services: DashboardServices,
                                                               jobs: RecordingJobs) -> None:
    c = _app(services, "viewer").controls
    assert c.confirm_engage() is False
    assert c.message.alert_type == "danger" and "needs role trader" in c.message.object
    assert services.store.kill_switch("paper").engaged is False
    assert c.set_strategy(False) is False
    assert AuthRepo(services.store).strategy_flags("paper") == {}
    c.job.value = "nightly"
    assert c.trigger_job() is False and jobs.triggered == []


def test_a_trader_halts_only_after_confirming(services: DashboardServices) -> None:
    app = _app(services, "trader")
    c = app.controls
    assert not c.engage.disabled and c.resume.disabled
    c.ask_engage()
    assert c.confirm_box.visible
    assert services.store.kill_switch("paper").engaged is False  # not yet
    c.cancel_engage()
    assert not c.confirm_box.visible
    c.ask_engage()
    c.halt_reason.value = "too volatile"
    assert c.confirm_engage() is True
    ks = services.store.kill_switch("paper")
    assert ks.engaged and ks.by == "trader" and ks.reason == "too volatile"
    assert app.state.snapshot.kill_switch.engaged  # refreshed at once, not at the next poll
    assert "data-state='halted'" in app.views.kill_switch.object
    assert c.engage.disabled and not c.confirm_box.visible
    assert c.resume.disabled  # traders cannot resume
    assert c.do_resume() is False and "needs role admin" in c.message.object
    assert services.store.kill_switch("paper").engaged


def test_an_admin_resumes(services: DashboardServices) -> None:
    _app(services, "trader").controls.confirm_engage()
    c = _app(services, "admin").controls
    assert not c.resume.disabled
    assert c.do_resume() is True
    assert services.store.kill_switch("paper").engaged is False


def test_a_trader_switches_a_strategy_off_and_on(services: DashboardServices) -> None:
    app = _app(services, "trader")
    c = app.controls
    # the shipped strategies, sorted (more may be shipped: strategies/ grows)
    assert {"donchian_breakout", "rsi_reversion", "sma_cross", "sma_cross_ls"} <= set(
        c.strategy.options)
    assert c.strategy.options == sorted(c.strategy.options)
    c.strategy.value = "sma_cross"
    assert c.set_strategy(False) is True
    assert AuthRepo(services.store).strategy_flags("paper")["sma_cross"].enabled is False
    assert "data-testid='strategy-sma_cross' data-enabled='false'" in c.strategy_states.object
    assert c.set_strategy(True) is True
    assert AuthRepo(services.store).strategy_flags("paper")["sma_cross"].enabled is True


def test_a_trader_triggers_a_job(services: DashboardServices, jobs: RecordingJobs) -> None:
    c = _app(services, "trader").controls
    assert c.job.options == ["nightly"] and c.job.value == "nightly"
    assert c.trigger_job() is True
    assert jobs.triggered == [("nightly", "trader")]


def test_without_a_job_runner_the_trigger_says_so(services: DashboardServices) -> None:
    services.control.jobs_backend = StoreJobs(services.store)
    c = _app(services, "trader").controls
    c.job.options, c.job.value = ["nightly"], "nightly"
    c.job.disabled = c.trigger.disabled = False
    assert c.trigger_job() is False
    assert "no job runner" in c.message.object


def test_a_role_change_applies_at_the_next_click(services: DashboardServices) -> None:
    app = _app(services, "trader")
    user = services.auth.repo.get_user("trader")
    services.auth.repo.update_user(user.id, services.auth.now(), role="viewer")
    assert app.controls.confirm_engage() is False
    assert services.store.kill_switch("paper").engaged is False
    assert app.session.principal.role.name == "viewer"
