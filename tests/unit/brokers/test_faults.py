"""The ``--faults`` SPEC grammar and how faults are consumed."""

from __future__ import annotations

import pytest

from tradelab.brokers.sim.faults import FaultPlan, FaultSpecError


def test_counts_scope_and_countdowns() -> None:
    plan = FaultPlan("drop_ack=once,http429=2@order,disconnect_after=2,delay_fill=3,retry_after=0.5")
    assert plan.take("drop_ack") and not plan.take("drop_ack")
    assert not plan.take("http429")  # scoped to order requests
    assert plan.take("http429", "order") and plan.take("http429", "order")
    assert not plan.take("http429", "order")
    assert not plan.countdown("disconnect_after") and plan.countdown("disconnect_after")
    assert not plan.countdown("disconnect_after")
    assert plan.pop("delay_fill") == 3 and plan.pop("delay_fill") is None
    assert plan.get("retry_after", 1) == 0.5
    assert plan.describe()["fired"]["http429"] == 2


def test_probabilities_are_deterministic_under_a_seed() -> None:
    draws = [[FaultPlan("dup_events=0.3", seed=7).take("dup_events") for _ in range(1)] for _ in range(2)]
    a, b = FaultPlan("reorder=0.3", seed=7), FaultPlan("reorder=0.3", seed=7)
    assert [a.take("reorder") for _ in range(50)] == [b.take("reorder") for _ in range(50)]
    assert draws[0] == draws[1]


def test_runtime_update_and_clear() -> None:
    plan = FaultPlan()
    plan.update("http5xx=always")
    assert all(plan.take("http5xx") for _ in range(5))
    plan.clear()
    assert not plan.take("http5xx")


@pytest.mark.parametrize("spec", ["nope=1", "drop_ack", "dup_events=1.5", "http429=2@x", "delay_fill=a"])
def test_bad_specs_are_refused(spec) -> None:
    with pytest.raises(FaultSpecError):
        FaultPlan(spec)
